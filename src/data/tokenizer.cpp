/// \file
/// \brief The tokenizers: GPT-2's pre-split written by hand, the character tokenizer, byte-level BPE
/// (training, encoding, decoding), and their serialized form.
///
/// A reader learns here how BPE training is made fast without changing its result. The textbook
/// loop — count every adjacent pair in the whole text, merge the most frequent, repeat — re-reads
/// the text once per merge. Two observations make it cheap. First, merges never cross chunk
/// boundaries, and a text of a few MB has only tens of thousands of *distinct* chunks (words), so
/// each distinct chunk is stored once with its number of occurrences. Second, a merge changes only
/// the chunks that contain its pair, so the pair counts are updated incrementally for those chunks
/// alone, and a heap finds the most frequent pair. Ties between equally frequent pairs are broken as
/// minbpe breaks them — the pair that occurs first in the text wins — which is why every pair keeps
/// the (sorted) list of chunks it occurs in.
#include "qkv/data/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <queue>

#include "qkv/data/tasks.hpp"
#include "qkv/error.hpp"
#include "qkv/io/file.hpp"

namespace qkv::data {

// ---- characters: lenient UTF-8 and the classes of the pre-split ---------------------------------

namespace {

// One character of possibly invalid UTF-8 at the start of s: its code point and byte length. A byte
// that does not begin a valid sequence (a stray continuation byte, a truncated or overlong sequence,
// a surrogate, a value above U+10FFFF, 0xF8–0xFF) is a "character" of its own, 1 byte long, and not
// valid — byte-level BPE must cut any input, not only good text.
struct Utf8Char {
    char32_t code = 0;
    std::size_t length = 1;
    bool valid = false;
};

Utf8Char next_char(std::string_view s, std::size_t i) {
    const auto lead = static_cast<unsigned char>(s[i]);
    if (lead < 0x80) return {lead, 1, true};
    const std::size_t n = (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return {lead, 1, false};
    char32_t c = lead & (0x7F >> n);
    for (std::size_t k = 1; k < n; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) return {lead, 1, false};
        c = (c << 6) | (b & 0x3F);
    }
    static constexpr char32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};  // below: an overlong form
    if (c < kMin[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return {lead, 1, false};
    return {c, n, true};
}

// Code points above Latin-1 that are not letters, as sorted, disjoint ranges. Everything above U+00FF
// not listed here counts as a letter. (A selection of the Unicode blocks text actually uses; see
// char_class()'s documentation for what this approximates.)
struct ClassRange {
    char32_t first, last;
    CharClass cls;
};
constexpr CharClass S = CharClass::space, N = CharClass::number, O = CharClass::other;
constexpr ClassRange kRanges[] = {
    {0x02C2, 0x02C5, O},   {0x02D2, 0x02DF, O},   {0x02E5, 0x02EB, O},   {0x02ED, 0x02ED, O},
    {0x02EF, 0x036F, O},   // modifier symbols, combining diacritical marks
    {0x037E, 0x037E, O},   {0x0384, 0x0385, O},   {0x0387, 0x0387, O},   // Greek punctuation
    {0x0482, 0x0489, O},   // Cyrillic marks
    {0x055A, 0x055F, O},   {0x0589, 0x058A, O},   // Armenian punctuation
    {0x0591, 0x05C7, O},   {0x05F3, 0x05F4, O},   // Hebrew points and punctuation
    {0x0600, 0x061F, O},   {0x064B, 0x065F, O},   {0x0660, 0x0669, N},   {0x066A, 0x066D, O},
    {0x0670, 0x0670, O},   {0x06D4, 0x06D4, O},   {0x06D6, 0x06ED, O},   {0x06F0, 0x06F9, N},  // Arabic
    {0x0964, 0x0965, O},   {0x0966, 0x096F, N},   {0x09E6, 0x09EF, N},   {0x0A66, 0x0A6F, N},
    {0x0AE6, 0x0AEF, N},   {0x0B66, 0x0B6F, N},   {0x0BE6, 0x0BEF, N},   {0x0C66, 0x0C6F, N},
    {0x0CE6, 0x0CEF, N},   {0x0D66, 0x0D6F, N},   {0x0E3F, 0x0E3F, O},   {0x0E50, 0x0E59, N},
    {0x0ED0, 0x0ED9, N},   {0x0F20, 0x0F33, N},   {0x1040, 0x1049, N},   // Indic, Thai, Lao, ... digits
    {0x1680, 0x1680, S},   {0x17E0, 0x17E9, N},   {0x1810, 0x1819, N},
    {0x1AB0, 0x1AFF, O},   {0x1DC0, 0x1DFF, O},   // combining marks
    {0x2000, 0x200A, S},   {0x200B, 0x2027, O},   {0x2028, 0x2029, S},   {0x202A, 0x202E, O},
    {0x202F, 0x202F, S},   {0x2030, 0x205E, O},   {0x205F, 0x205F, S},   {0x2060, 0x206F, O},
    {0x2070, 0x2070, N},   {0x2074, 0x2079, N},   {0x207A, 0x207E, O},   {0x2080, 0x2089, N},
    {0x208A, 0x208E, O},   {0x20A0, 0x20FF, O},   // general punctuation, super/subscripts, currency
    {0x2150, 0x2182, N},   {0x2185, 0x2189, N},   // number forms (fractions, Roman numerals)
    {0x2190, 0x245F, O},   {0x2460, 0x249B, N},   {0x249C, 0x24E9, O},   {0x24EA, 0x24FF, N},
    {0x2500, 0x2775, O},   {0x2776, 0x2793, N},   {0x2794, 0x2BFF, O},   // arrows, math, shapes, dingbats
    {0x2E00, 0x2E7F, O},   {0x2FF0, 0x2FFF, O},   // supplemental punctuation, ideographic description
    {0x3000, 0x3000, S},   {0x3001, 0x3004, O},   {0x3007, 0x3007, N},   {0x3008, 0x3020, O},
    {0x3021, 0x3029, N},   {0x302A, 0x3030, O},   {0x3036, 0x3037, O},   {0x3038, 0x303A, N},
    {0x303D, 0x303F, O},   {0x3099, 0x309C, O},   {0x30A0, 0x30A0, O},   {0x30FB, 0x30FB, O},  // CJK punctuation
    {0x3200, 0x33FF, O},   // enclosed CJK letters, compatibility
    {0xD800, 0xF8FF, O},   // surrogates (never valid UTF-8) and private use
    {0xFD3E, 0xFD3F, O},   {0xFE00, 0xFE6B, O},   {0xFEFF, 0xFEFF, O},   // variation selectors, forms, BOM
    {0xFF01, 0xFF0F, O},   {0xFF10, 0xFF19, N},   {0xFF1A, 0xFF20, O},   {0xFF3B, 0xFF40, O},
    {0xFF5B, 0xFF65, O},   {0xFFE0, 0xFFFF, O},   // fullwidth forms, specials
    {0x1D100, 0x1D1FF, O}, {0x1D7CE, 0x1D7FF, N}, // musical symbols, mathematical digits
    {0x1F000, 0x1F0FF, O}, {0x1F100, 0x1F10C, N}, {0x1F10D, 0x1FAFF, O},  // emoji and pictographs
    {0xE0000, 0x10FFFF, O},  // tags, variation selectors supplement, private use
};

constexpr bool sorted_and_disjoint() {
    for (std::size_t i = 0; i < std::size(kRanges); ++i)
        if (kRanges[i].first > kRanges[i].last || (i > 0 && kRanges[i].first <= kRanges[i - 1].last)) return false;
    return true;
}
static_assert(sorted_and_disjoint(), "kRanges must be sorted and disjoint (char_class searches it)");

// Latin-1 (U+0080–U+00FF), exactly: controls, punctuation and symbols, digits ² ³ ¹ ¼ ½ ¾, letters.
CharClass latin1_class(char32_t c) {
    if (c == 0x85 || c == 0xA0) return CharClass::space;
    if (c < 0xA0) return CharClass::other;  // C1 controls
    if (c == 0xB2 || c == 0xB3 || c == 0xB9 || (c >= 0xBC && c <= 0xBE)) return CharClass::number;
    if (c == 0xAA || c == 0xB5 || c == 0xBA) return CharClass::letter;  // ª µ º
    if (c < 0xC0 || c == 0xD7 || c == 0xF7) return CharClass::other;   // ¡ … ¿, × and ÷
    return CharClass::letter;                                          // À … ÿ
}

}  // namespace

CharClass char_class(char32_t c) {
    if (c < 0x80) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return CharClass::letter;
        if (c >= '0' && c <= '9') return CharClass::number;
        if (c == ' ' || (c >= '\t' && c <= '\r')) return CharClass::space;
        return CharClass::other;
    }
    if (c < 0x100) return latin1_class(c);
    const auto it = std::upper_bound(std::begin(kRanges), std::end(kRanges), c,
                                     [](char32_t v, const ClassRange& r) { return v < r.first; });
    if (it != std::begin(kRanges) && c <= std::prev(it)->last) return std::prev(it)->cls;
    return CharClass::letter;
}

std::string_view pre_split_name(PreSplit split) { return split == PreSplit::gpt2 ? "gpt2" : "none"; }

// ---- the pre-split ------------------------------------------------------------------------------

namespace {

// The class of the character at byte i (invalid bytes are "other").
CharClass class_at(std::string_view s, std::size_t i, std::size_t& length) {
    const Utf8Char u = next_char(s, i);
    length = u.length;
    return u.valid ? char_class(u.code) : CharClass::other;
}

// End of the run of characters of class `cls` that starts at byte i, stopping before the chunk
// would exceed kMaxChunkBytes counted from `start`.
std::size_t run_end(std::string_view s, std::size_t i, CharClass cls, std::size_t start) {
    while (i < s.size()) {
        std::size_t len = 0;
        if (class_at(s, i, len) != cls || i + len - start > kMaxChunkBytes) break;
        i += len;
    }
    return i;
}

// GPT-2's contractions: 's 't 're 've 'm 'll 'd (lower case, as in GPT-2's pattern). Returns the
// length of the one at byte i, or 0.
std::size_t contraction_at(std::string_view s, std::size_t i) {
    if (s[i] != '\'' || i + 1 >= s.size()) return 0;
    const char a = s[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 < s.size()) {
        const char b = s[i + 2];
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
    return 0;
}

}  // namespace

std::vector<std::string_view> split_gpt2(std::string_view s) {
    std::vector<std::string_view> chunks;
    std::size_t i = 0;
    while (i < s.size()) {
        const std::size_t start = i;
        std::size_t end = 0;
        // 1. 's 't 're 've 'm 'll 'd
        if (const std::size_t c = contraction_at(s, i)) {
            end = i + c;
        } else {
            // 2. ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional space, then a run of one class.
            std::size_t j = i;
            if (s[j] == ' ' && j + 1 < s.size()) ++j;
            std::size_t len = 0;
            const CharClass cls = class_at(s, j, len);
            if (cls != CharClass::space) {
                end = run_end(s, j, cls, start);
            } else {
                // 3. whitespace: '\s+(?!\S)' leaves the last space of a run for the next chunk when a
                // non-space follows; '\s+' takes a single space before a non-space.
                const std::size_t k = run_end(s, i, CharClass::space, start);
                end = k;
                if (k < s.size()) {
                    std::size_t l = 0;
                    const bool capped = class_at(s, k, l) == CharClass::space;  // the cap cut the run
                    if (!capped) {
                        // Back up over the run's last character, unless it is the run's only one.
                        std::size_t last = i;
                        for (std::size_t p = i; p < k; p += l) {
                            last = p;
                            class_at(s, p, l);
                        }
                        if (last > i) end = last;
                    }
                }
            }
        }
        if (end <= start) end = start + next_char(s, start).length;  // (cannot happen; never loop forever)
        chunks.push_back(s.substr(start, end - start));
        i = end;
    }
    return chunks;
}

std::vector<std::string_view> pre_split(std::string_view text, PreSplit split) {
    if (split == PreSplit::gpt2) return split_gpt2(text);
    // No rule: pieces of at most kMaxChunkBytes, cut at character boundaries.
    std::vector<std::string_view> chunks;
    std::size_t start = 0;
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t len = next_char(text, i).length;
        if (i + len - start > kMaxChunkBytes) {
            chunks.push_back(text.substr(start, i - start));
            start = i;
        }
        i += len;
    }
    if (start < text.size()) chunks.push_back(text.substr(start));
    return chunks;
}

// ---- the interface ------------------------------------------------------------------------------

std::vector<std::int32_t> Tokenizer::encode_with_specials(std::string_view text) const {
    const auto special = specials();
    std::vector<std::int32_t> ids;
    std::size_t from = 0;
    while (from <= text.size()) {
        // The leftmost special text at or after `from` (the first listed, when two start together).
        std::size_t at = std::string_view::npos, which = 0;
        for (std::size_t k = 0; k < special.size(); ++k) {
            const std::size_t p = text.find(special[k].first, from);
            if (p < at) at = p, which = k;
        }
        const auto part = encode(text.substr(from, at == std::string_view::npos ? std::string_view::npos : at - from));
        ids.insert(ids.end(), part.begin(), part.end());
        if (at == std::string_view::npos) break;
        ids.push_back(special[which].second);
        from = at + special[which].first.size();
    }
    return ids;
}

std::string Tokenizer::decode(const std::vector<std::int32_t>& ids) const {
    std::string out;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0 || ids[i] >= vocab_size())
            fail("{} tokenizer: decode: token id {} at position {} is outside [0, {})", kind(), ids[i], i, vocab_size());
        out += token_bytes(ids[i]);
    }
    return out;
}

std::int32_t Tokenizer::end_of_text() const {
    for (const auto& [text, id] : specials())
        if (text == kEndOfText) return id;
    return -1;
}

void Tokenizer::save(const std::string& path) const { io::write_text_file(path, serialize(), "tokenizer"); }

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& path) {
    return parse(io::read_file(path, "Tokenizer::load"), path);
}

// ---- characters ---------------------------------------------------------------------------------

namespace {

// A character in messages: itself when printable ASCII, else U+XXXX.
std::string show(char32_t c) {
    if (c >= 0x20 && c < 0x7F) return fmt::format("'{}'", static_cast<char>(c));
    return fmt::format("U+{:04X}", static_cast<std::uint32_t>(c));
}

}  // namespace

CharTokenizer CharTokenizer::train(std::string_view text) {
    if (text.empty()) fail("CharTokenizer::train: the text is empty");
    std::u32string chars = decode_utf8(text, "CharTokenizer::train");
    std::sort(chars.begin(), chars.end());
    chars.erase(std::unique(chars.begin(), chars.end()), chars.end());
    return CharTokenizer(std::move(chars));
}

CharTokenizer::CharTokenizer(std::u32string symbols) : symbols_(std::move(symbols)) {
    if (symbols_.empty()) fail("CharTokenizer: the vocabulary is empty");
    if (std::int64_t(symbols_.size()) > kMaxCharVocab)
        fail("CharTokenizer: {} characters, more than Unicode has", symbols_.size());
    for (std::size_t i = 0; i < symbols_.size(); ++i) {
        const char32_t c = symbols_[i];
        if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            fail("CharTokenizer: token {} is U+{:X}, not a Unicode character", i, std::uint32_t(c));
        sorted_.emplace_back(c, std::int32_t(i));
    }
    std::sort(sorted_.begin(), sorted_.end());
    for (std::size_t i = 1; i < sorted_.size(); ++i)
        if (sorted_[i].first == sorted_[i - 1].first)
            fail("CharTokenizer: character {} appears twice (ids {} and {})", show(sorted_[i].first),
                 sorted_[i - 1].second, sorted_[i].second);
}

std::vector<std::int32_t> CharTokenizer::encode(std::string_view text) const {
    const std::u32string chars = decode_utf8(text, "CharTokenizer::encode");
    std::vector<std::int32_t> ids(chars.size());
    for (std::size_t i = 0; i < chars.size(); ++i) {
        const auto it = std::lower_bound(sorted_.begin(), sorted_.end(), std::make_pair(chars[i], std::int32_t(-1)));
        if (it == sorted_.end() || it->first != chars[i])
            fail("CharTokenizer::encode: character {} at position {} is not in the vocabulary (the {} characters "
                 "of the training text)",
                 show(chars[i]), i, symbols_.size());
        ids[i] = it->second;
    }
    return ids;
}

std::string CharTokenizer::token_bytes(std::int32_t id) const {
    if (id < 0 || id >= vocab_size()) fail("char tokenizer: token id {} is outside [0, {})", id, vocab_size());
    return encode_utf8(std::u32string_view(&symbols_[std::size_t(id)], 1));
}

std::string CharTokenizer::serialize() const {
    std::string s = fmt::format("qkv-tokenizer 1\nkind char\nchars {}\n", symbols_.size());
    for (const char32_t c : symbols_) s += fmt::format("{}\n", std::uint32_t(c));
    return s;
}

// ---- byte-level BPE: the tokenizer --------------------------------------------------------------

namespace {

std::uint64_t pack(std::int32_t left, std::int32_t right) {
    return (std::uint64_t(std::uint32_t(left)) << 32) | std::uint32_t(right);
}
std::int32_t left_of(std::uint64_t pair) { return std::int32_t(pair >> 32); }
std::int32_t right_of(std::uint64_t pair) { return std::int32_t(pair & 0xFFFFFFFFu); }

}  // namespace

BpeTokenizer::BpeTokenizer(std::vector<BpeMerge> merges, PreSplit split, std::vector<std::int32_t> ids)
    : merges_(std::move(merges)), split_(split), ids_(std::move(ids)) {
    if (std::int64_t(merges_.size()) > kMaxBpeVocab - 256)
        fail("BpeTokenizer: {} merges, more than the limit of {}", merges_.size(), kMaxBpeVocab - 256);
    vocab_.reserve(256 + merges_.size() + 1);
    for (int b = 0; b < 256; ++b) vocab_.emplace_back(1, static_cast<char>(b));
    ranks_.reserve(merges_.size());
    for (std::size_t i = 0; i < merges_.size(); ++i) {
        const auto [l, r] = merges_[i];
        const auto next = std::int32_t(256 + i);
        if (l < 0 || r < 0 || l >= next || r >= next)
            fail("BpeTokenizer: merge {} ({} {}) uses a token that does not exist yet (ids must be below {})", i, l, r,
                 next);
        if (!ranks_.emplace(pack(l, r), next).second) fail("BpeTokenizer: merge {} ({} {}) repeats an earlier merge", i, l, r);
        // Training merges inside chunks only, so no token is longer than a chunk; a longer one means
        // a forged file (merges that double a token's length each time would need 2^n bytes).
        // (A renumbered tokenizer comes from another program's files, whose tokens may be longer —
        // GPT-2 merged without a cap — but are each spelled out in those files: no doubling trick.)
        const std::size_t length = vocab_[std::size_t(l)].size() + vocab_[std::size_t(r)].size();
        if (ids_.empty() && length > kMaxChunkBytes)
            fail("BpeTokenizer: merge {} ({} {}) makes a token of {} bytes, longer than a chunk ({} bytes)", i, l, r,
                 length, kMaxChunkBytes);
        if (length > kMaxImportedTokenBytes)
            fail("BpeTokenizer: merge {} ({} {}) makes a token of {} bytes, longer than {} bytes", i, l, r, length,
                 kMaxImportedTokenBytes);
        vocab_.push_back(vocab_[std::size_t(l)] + vocab_[std::size_t(r)]);
    }
    vocab_.emplace_back(kEndOfText);  // the special token: its id follows the merges
    if (!ids_.empty()) {
        if (ids_.size() != vocab_.size())
            fail("BpeTokenizer: {} ids for {} tokens (256 bytes, {} merges, end of text)", ids_.size(), vocab_.size(),
                 merges_.size());
        inside_.assign(vocab_.size(), -1);
        for (std::size_t t = 0; t < ids_.size(); ++t) {
            const std::int32_t id = ids_[t];
            if (id < 0 || std::size_t(id) >= vocab_.size())
                fail("BpeTokenizer: id {} of token {} is outside [0, {})", id, t, vocab_.size());
            if (inside_[std::size_t(id)] >= 0)
                fail("BpeTokenizer: id {} is given to two tokens ({} and {})", id, inside_[std::size_t(id)], t);
            inside_[std::size_t(id)] = std::int32_t(t);
        }
    }
}

std::int32_t BpeTokenizer::inside(std::int32_t id) const {
    if (id < 0 || id >= vocab_size()) fail("bpe tokenizer: token id {} is outside [0, {})", id, vocab_size());
    return ids_.empty() ? id : inside_[std::size_t(id)];
}

std::string BpeTokenizer::token_bytes(std::int32_t id) const { return vocab_[std::size_t(inside(id))]; }

std::vector<std::pair<std::string, std::int32_t>> BpeTokenizer::specials() const {
    const auto last = std::int32_t(vocab_.size() - 1);
    return {{std::string(kEndOfText), ids_.empty() ? last : ids_[std::size_t(last)]}};
}

// Apply the merges to one chunk, earliest merge first: find the adjacent pair whose merge was learned
// first (lowest new id), replace all its occurrences left to right, repeat until no pair has a merge.
void BpeTokenizer::encode_chunk(std::string_view chunk, std::vector<std::int32_t>& out) const {
    std::array<std::int32_t, kMaxChunkBytes> ids{};  // chunks are at most kMaxChunkBytes long
    std::size_t n = chunk.size();
    for (std::size_t i = 0; i < n; ++i) ids[i] = static_cast<unsigned char>(chunk[i]);
    while (n >= 2) {
        std::int32_t best = std::numeric_limits<std::int32_t>::max(), bl = 0, br = 0;
        for (std::size_t i = 0; i + 1 < n; ++i) {
            const auto it = ranks_.find(pack(ids[i], ids[i + 1]));
            if (it != ranks_.end() && it->second < best) best = it->second, bl = ids[i], br = ids[i + 1];
        }
        if (best == std::numeric_limits<std::int32_t>::max()) break;
        std::size_t w = 0;
        for (std::size_t r = 0; r < n;) {
            if (r + 1 < n && ids[r] == bl && ids[r + 1] == br) {
                ids[w++] = best;
                r += 2;
            } else {
                ids[w++] = ids[r++];
            }
        }
        n = w;
    }
    out.insert(out.end(), ids.begin(), ids.begin() + std::ptrdiff_t(n));
}

std::vector<std::int32_t> BpeTokenizer::encode(std::string_view text) const {
    std::vector<std::int32_t> out;
    out.reserve(text.size() / 3 + 16);
    // Words repeat: remember where each distinct chunk's ids were first written in `out` and copy
    // them from there (the result is the same; only the time changes).
    std::unordered_map<std::string_view, std::pair<std::size_t, std::size_t>> seen;
    for (const std::string_view chunk : pre_split(text, split_)) {
        const auto it = seen.find(chunk);
        if (it != seen.end()) {
            const auto [at, count] = it->second;
            for (std::size_t k = 0; k < count; ++k) out.push_back(out[at + k]);  // (may reallocate: index, not iterators)
            continue;
        }
        const std::size_t at = out.size();
        encode_chunk(chunk, out);
        seen.emplace(chunk, std::make_pair(at, out.size() - at));
    }
    if (!ids_.empty())
        for (auto& id : out) id = ids_[std::size_t(id)];  // the outside world's numbering
    return out;
}

std::string BpeTokenizer::serialize() const {
    std::string s = fmt::format("qkv-tokenizer 1\nkind bpe\nsplit {}\nmerges {}\n", pre_split_name(split_), merges_.size());
    for (const auto& m : merges_) s += fmt::format("{} {}\n", m.left, m.right);
    s += fmt::format("special {}\n", kEndOfText);
    if (!ids_.empty()) {
        s += fmt::format("ids {}\n", ids_.size());
        for (const auto id : ids_) s += fmt::format("{}\n", id);
    }
    return s;
}

// ---- byte-level BPE: training -------------------------------------------------------------------

BpeTokenizer BpeTokenizer::train(std::string_view text, std::int64_t vocab_size, const BpeTrainOptions& options) {
    if (vocab_size < 256 || vocab_size > kMaxBpeVocab)
        fail("BpeTokenizer::train: vocab_size must be in [256, {}] (256 byte tokens + merges), got {}", kMaxBpeVocab,
             vocab_size);
    const std::size_t wanted = std::size_t(vocab_size - 256);

    // 1. The distinct chunks ("words"), in order of first appearance, each with its number of
    //    occurrences. Special-token texts are cut out first: they never take part in a merge.
    struct Word {
        std::vector<std::int32_t> ids;
        std::int64_t count = 0;
    };
    std::vector<Word> words;
    {
        std::unordered_map<std::string_view, std::uint32_t> index;
        auto add_chunks = [&](std::string_view piece) {
            for (const std::string_view chunk : pre_split(piece, options.split)) {
                const auto [it, added] = index.try_emplace(chunk, std::uint32_t(words.size()));
                if (added) {
                    Word w;
                    for (const char c : chunk) w.ids.push_back(static_cast<unsigned char>(c));  // bytes 0–255
                    words.push_back(std::move(w));
                }
                ++words[it->second].count;
            }
        };
        for (std::size_t from = 0;;) {
            const std::size_t at = text.find(kEndOfText, from);
            add_chunks(text.substr(from, at == std::string_view::npos ? std::string_view::npos : at - from));
            if (at == std::string_view::npos) break;
            from = at + kEndOfText.size();
        }
    }

    // 2. Every adjacent pair: how often it occurs (over all occurrences of all words), and in which
    //    words — a list in increasing word order, so its first entry still holding the pair is
    //    where the pair first occurs in the text. Entries can go stale (a merge destroyed the pair
    //    there); they are skipped when read.
    struct PairStats {
        std::int64_t count = 0;
        std::vector<std::uint32_t> where;
    };
    std::unordered_map<std::uint64_t, PairStats> stats;
    for (std::uint32_t i = 0; i < words.size(); ++i) {
        const auto& ids = words[i].ids;
        for (std::size_t j = 0; j + 1 < ids.size(); ++j) {
            PairStats& s = stats[pack(ids[j], ids[j + 1])];
            s.count += words[i].count;
            if (s.where.empty() || s.where.back() != i) s.where.push_back(i);
        }
    }
    // Where a pair first occurs in the text: (word index, byte offset of its left token in the word).
    // Words are in order of first appearance, so this orders pairs as minbpe's first-seen rule does;
    // byte offsets, unlike token positions, do not move when other pairs of the word merge.
    std::vector<std::uint32_t> length(256, 1);  // bytes of each token
    auto first_occurrence = [&](std::uint64_t pair) {
        PairStats& s = stats.at(pair);
        const std::int32_t l = left_of(pair), r = right_of(pair);
        std::size_t stale = 0;
        for (const std::uint32_t i : s.where) {
            const auto& ids = words[i].ids;
            std::uint32_t offset = 0;
            for (std::size_t j = 0; j + 1 < ids.size(); offset += length[std::size_t(ids[j])], ++j)
                if (ids[j] == l && ids[j + 1] == r) {
                    s.where.erase(s.where.begin(), s.where.begin() + std::ptrdiff_t(stale));  // drop stale entries
                    return std::make_pair(i, offset);
                }
            ++stale;
        }
        fail("BpeTokenizer::train: internal error: pair ({} {}) has a count but no occurrence", l, r);
    };
    // A heap of candidates, best first: higher count, then earlier first occurrence. Both only ever
    // get worse for a pair — its occurrences can be destroyed by merges, but never added to (two
    // tokens become adjacent only when the newer of them is made, and then every occurrence of that
    // pair is counted at once) — so an entry whose key is out of date ranks too *high*, never too
    // low. Popping the top therefore suffices: if its count is stale, drop it (a fresh entry was
    // pushed when the count changed); if its first occurrence moved, push it back with the new one.
    struct Candidate {
        std::int64_t count;
        std::pair<std::uint32_t, std::uint32_t> first;
        std::uint64_t pair;
        bool operator<(const Candidate& o) const {  // "ranks below"
            return count != o.count ? count < o.count : first > o.first;
        }
    };
    std::priority_queue<Candidate> heap;
    for (const auto& [pair, s] : stats) heap.push({s.count, first_occurrence(pair), pair});

    std::vector<BpeMerge> merges;
    merges.reserve(wanted);
    std::unordered_map<std::uint64_t, std::int64_t> delta;  // count changes of one merge
    while (merges.size() < wanted) {
        // 3. The most frequent pair; among equally frequent ones, the one that occurs first.
        std::uint64_t best = 0;
        std::int64_t best_count = 0;
        while (!heap.empty()) {
            const Candidate top = heap.top();
            heap.pop();
            const auto it = stats.find(top.pair);
            if (it == stats.end() || it->second.count != top.count) continue;  // stale count
            const auto first = first_occurrence(top.pair);
            if (first != top.first) {
                heap.push({top.count, first, top.pair});  // it moved later: try again with its real key
                continue;
            }
            best = top.pair, best_count = top.count;
            break;
        }
        if (best_count < 2) {
            if (options.stop_early) break;
            fail("BpeTokenizer::train: vocab_size {} is more than this text supports: after {} merges no pair of "
                 "tokens occurs twice, so at most {} (256 bytes + {} merges)",
                 vocab_size, merges.size(), 256 + merges.size(), merges.size());
        }

        // 4. Merge: in every word holding the pair, replace it left to right by the new token, and
        //    update the counts — remove the word's old pairs, add its new ones.
        const std::int32_t l = left_of(best), r = right_of(best), made = std::int32_t(256 + merges.size());
        merges.push_back({l, r});
        length.push_back(length[std::size_t(l)] + length[std::size_t(r)]);
        const std::vector<std::uint32_t> where = std::move(stats.at(best).where);
        delta.clear();
        for (const std::uint32_t i : where) {
            auto& ids = words[i].ids;
            const std::int64_t c = words[i].count;
            bool holds = false;
            for (std::size_t j = 0; j + 1 < ids.size() && !holds; ++j) holds = ids[j] == l && ids[j + 1] == r;
            if (!holds) continue;  // a stale entry
            for (std::size_t j = 0; j + 1 < ids.size(); ++j) delta[pack(ids[j], ids[j + 1])] -= c;
            std::size_t w = 0;
            for (std::size_t k = 0; k < ids.size();) {
                if (k + 1 < ids.size() && ids[k] == l && ids[k + 1] == r) {
                    ids[w++] = made;
                    k += 2;
                } else {
                    ids[w++] = ids[k++];
                }
            }
            ids.resize(w);
            for (std::size_t j = 0; j + 1 < ids.size(); ++j) {
                const std::uint64_t p = pack(ids[j], ids[j + 1]);
                delta[p] += c;
                // Pairs with the new token are new; the others were in this word already, and
                // `where` lists it. (Words are visited in increasing order, so lists stay sorted.)
                if (ids[j] == made || ids[j + 1] == made) {
                    PairStats& s = stats[p];
                    if (s.where.empty() || s.where.back() != i) s.where.push_back(i);
                }
            }
        }
        for (const auto& [p, d] : delta) {
            if (d == 0) continue;
            PairStats& s = stats[p];
            s.count += d;
            // A pair whose count reaches 0 can never come back: two tokens become adjacent only
            // when the newer of them is made. So its entry goes.
            if (s.count <= 0) stats.erase(p);
            else heap.push({s.count, first_occurrence(p), p});
        }
    }
    return BpeTokenizer(std::move(merges), options.split);
}

// ---- parsing ------------------------------------------------------------------------------------

namespace {

// Reads the serialized form line by line; every problem names the source and the line number.
class Reader {
public:
    Reader(std::string_view text, std::string_view source) : text_(text), source_(source) {}

    [[noreturn]] void error(const std::string& what) const {
        fail("tokenizer '{}': line {}: {}", source_, line_no_, what);
    }
    // The next line (without its '\n'); an error at the end of the text.
    std::string_view line() {
        if (pos_ >= text_.size()) {
            ++line_no_;
            error("unexpected end of the text");
        }
        const std::size_t nl = text_.find('\n', pos_);
        const std::size_t end = nl == std::string_view::npos ? text_.size() : nl;
        const std::string_view l = text_.substr(pos_, end - pos_);
        pos_ = nl == std::string_view::npos ? text_.size() : nl + 1;
        ++line_no_;
        return l;
    }
    // A line that must read exactly `want`.
    void expect(std::string_view want) {
        const std::string_view l = line();
        if (l != want) error(fmt::format("expected \"{}\", got \"{}\"", want, printable(l)));
    }
    // A line "<key> <value>": the value.
    std::string_view field(std::string_view key) {
        const std::string_view l = line();
        if (l.size() <= key.size() + 1 || l.substr(0, key.size()) != key || l[key.size()] != ' ')
            error(fmt::format("expected \"{} ...\", got \"{}\"", key, printable(l)));
        return l.substr(key.size() + 1);
    }
    // A whole decimal number in [lo, hi].
    std::int64_t number(std::string_view s, std::int64_t lo, std::int64_t hi) const {
        std::int64_t v = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc() || end != s.data() + s.size())
            error(fmt::format("expected a number, got \"{}\"", printable(s)));
        if (v < lo || v > hi) error(fmt::format("{} is outside [{}, {}]", v, lo, hi));
        return v;
    }
    bool at_end() const { return pos_ >= text_.size(); }
    // Whether the next line starts with `prefix` (nothing is consumed).
    bool next_starts_with(std::string_view prefix) const { return text_.substr(pos_, prefix.size()) == prefix; }
    std::size_t remaining() const { return text_.size() - pos_; }

    // At most 40 characters of a line, non-printable bytes as \xNN: safe to put in a message.
    static std::string printable(std::string_view s) {
        std::string out;
        for (std::size_t i = 0; i < s.size() && i < 40; ++i) {
            const auto c = static_cast<unsigned char>(s[i]);
            out += c >= 0x20 && c < 0x7F && c != '"' ? std::string(1, char(c)) : fmt::format("\\x{:02X}", c);
        }
        return s.size() > 40 ? out + "..." : out;
    }

private:
    std::string_view text_, source_;
    std::size_t pos_ = 0;
    std::int64_t line_no_ = 0;
};

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::parse(std::string_view text, std::string_view source) {
    Reader in(text, source);
    in.expect("qkv-tokenizer 1");
    const std::string_view kind = in.field("kind");
    std::unique_ptr<Tokenizer> result;
    if (kind == "char") {
        const auto n = in.number(in.field("chars"), 1, kMaxCharVocab);
        // Each entry takes at least 2 bytes ("9\n"): a count the text cannot hold is an error before
        // anything is allocated for it.
        if (std::size_t(n) > in.remaining() / 2 + 1) in.error(fmt::format("{} characters announced, but the text is too short", n));
        std::u32string symbols;
        symbols.reserve(std::size_t(n));
        for (std::int64_t i = 0; i < n; ++i) symbols.push_back(char32_t(in.number(in.line(), 0, 0x10FFFF)));
        try {
            result = std::make_unique<CharTokenizer>(std::move(symbols));
        } catch (const Error& e) {
            in.error(e.what());
        }
    } else if (kind == "bpe") {
        const std::string_view split_name = in.field("split");
        PreSplit split = PreSplit::gpt2;
        if (split_name == "none") split = PreSplit::none;
        else if (split_name != "gpt2") in.error(fmt::format("unknown split \"{}\" (expected gpt2 or none)", Reader::printable(split_name)));
        const auto n = in.number(in.field("merges"), 0, kMaxBpeVocab - 256);
        if (std::size_t(n) > in.remaining() / 4 + 1) in.error(fmt::format("{} merges announced, but the text is too short", n));
        std::vector<BpeMerge> merges;
        merges.reserve(std::size_t(n));
        for (std::int64_t i = 0; i < n; ++i) {
            const std::string_view l = in.line();
            const std::size_t sp = l.find(' ');
            if (sp == std::string_view::npos) in.error(fmt::format("expected two token ids, got \"{}\"", Reader::printable(l)));
            const auto a = in.number(l.substr(0, sp), 0, 255 + i), b = in.number(l.substr(sp + 1), 0, 255 + i);
            merges.push_back({std::int32_t(a), std::int32_t(b)});
        }
        in.expect(fmt::format("special {}", kEndOfText));
        std::vector<std::int32_t> ids;  // optional renumbering
        if (in.next_starts_with("ids ")) {
            const auto count = in.number(in.field("ids"), 1, kMaxBpeVocab);
            if (count != n + 257) in.error(fmt::format("{} ids for {} tokens", count, n + 257));
            if (std::size_t(count) > in.remaining() / 2 + 1) in.error(fmt::format("{} ids announced, but the text is too short", count));
            ids.reserve(std::size_t(count));
            for (std::int64_t i = 0; i < count; ++i) ids.push_back(std::int32_t(in.number(in.line(), 0, count - 1)));
        }
        try {
            result = std::make_unique<BpeTokenizer>(std::move(merges), split, std::move(ids));
        } catch (const Error& e) {
            in.error(e.what());
        }
    } else {
        in.error(fmt::format("unknown kind \"{}\" (expected char or bpe)", Reader::printable(kind)));
    }
    if (!in.at_end()) {
        in.line();
        in.error("unexpected text after the end of the tokenizer");
    }
    return result;
}

}  // namespace qkv::data
