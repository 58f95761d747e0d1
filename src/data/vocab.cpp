/// \file
/// \brief UTF-8 decoding and encoding, and qkv::data::Vocab: characters to token ids and back.
///
/// A reader learns here the smallest possible tokenizer: one token per character, the id being
/// the character's position in a symbol list. Text files are UTF-8, so "character" means Unicode
/// code point, not byte; the decoder below is strict (it rejects overlong forms, surrogates and
/// truncated sequences) so that a corrupt file fails loudly instead of training on garbage.
#include "qkv/data/tasks.hpp"

#include "qkv/error.hpp"

namespace qkv::data {
namespace {

// Number of bytes of a UTF-8 sequence, from its lead byte (0 for a byte that cannot lead).
int sequence_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if ((lead & 0xE0) == 0xC0) return 2;
    if ((lead & 0xF0) == 0xE0) return 3;
    if ((lead & 0xF8) == 0xF0) return 4;
    return 0;  // a continuation byte (10xxxxxx) or 0xF8..0xFF
}

// A character as it appears in messages: itself when printable ASCII, U+XXXX otherwise.
std::string show(char32_t c) {
    if (c >= 0x20 && c < 0x7F) return fmt::format("'{}'", static_cast<char>(c));
    return fmt::format("U+{:04X}", static_cast<std::uint32_t>(c));
}

}  // namespace

std::u32string decode_utf8(std::string_view text, std::string_view who) {
    // The smallest code point each length may encode: anything below is an "overlong" form.
    static constexpr char32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    std::u32string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        const auto lead = static_cast<unsigned char>(text[i]);
        const int n = sequence_length(lead);
        if (n == 0) fail("{}: invalid UTF-8: byte 0x{:02X} at offset {} cannot start a character", who, lead, i);
        if (i + n > text.size()) fail("{}: invalid UTF-8: truncated character at offset {}", who, i);
        // The lead byte keeps 7, 5, 4 or 3 payload bits; each continuation byte adds 6.
        char32_t c = n == 1 ? lead : lead & (0x7F >> n);
        for (int k = 1; k < n; ++k) {
            const auto b = static_cast<unsigned char>(text[i + k]);
            if ((b & 0xC0) != 0x80) fail("{}: invalid UTF-8: missing continuation byte at offset {}", who, i + k);
            c = (c << 6) | (b & 0x3F);
        }
        if (c < kMin[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            fail("{}: invalid UTF-8: bad code point U+{:04X} at offset {}", who, static_cast<std::uint32_t>(c), i);
        out.push_back(c);
        i += n;
    }
    return out;
}

std::string encode_utf8(std::u32string_view code_points) {
    std::string out;
    out.reserve(code_points.size());
    for (const char32_t c : code_points) {
        if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (c < 0x800) {
            out += static_cast<char>(0xC0 | (c >> 6));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out += static_cast<char>(0xE0 | (c >> 12));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (c >> 18));
            out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        }
    }
    return out;
}

Vocab::Vocab(std::string_view symbols) : symbols_(decode_utf8(symbols, "Vocab")) {
    for (std::size_t i = 0; i < symbols_.size(); ++i) {
        const auto [it, added] = ids_.emplace(symbols_[i], static_cast<std::int32_t>(i));
        if (!added) fail("Vocab: character {} appears twice (ids {} and {})", show(symbols_[i]), it->second, i);
    }
}

std::int32_t Vocab::id(char32_t c) const {
    const auto it = ids_.find(c);
    if (it == ids_.end()) fail("Vocab: character {} is not in the vocabulary \"{}\"", show(c), symbols());
    return it->second;
}

std::string Vocab::token(std::int32_t id) const {
    if (id < 0 || id >= size()) fail("Vocab: token id {} is out of range for a vocabulary of {}", id, size());
    return encode_utf8(std::u32string_view(&symbols_[static_cast<std::size_t>(id)], 1));
}

std::vector<std::int32_t> Vocab::encode(std::string_view text) const {
    const std::u32string chars = decode_utf8(text, "Vocab::encode");
    std::vector<std::int32_t> ids(chars.size());
    for (std::size_t i = 0; i < chars.size(); ++i) {
        const auto it = ids_.find(chars[i]);
        if (it == ids_.end())
            fail("Vocab::encode: character {} at position {} is not in the vocabulary \"{}\"", show(chars[i]), i,
                 symbols());
        ids[i] = it->second;
    }
    return ids;
}

std::string Vocab::decode(const std::vector<std::int32_t>& ids) const {
    std::u32string chars(ids.size(), U'\0');
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0 || ids[i] >= size())
            fail("Vocab::decode: token id {} at position {} is out of range for a vocabulary of {}", ids[i], i,
                 size());
        chars[i] = symbols_[static_cast<std::size_t>(ids[i])];
    }
    return encode_utf8(chars);
}

}  // namespace qkv::data
