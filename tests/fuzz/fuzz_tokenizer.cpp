/// \file
/// \brief libFuzzer target: the tokenizers and the text loader — everything `qkv train --text` and
/// `qkv sample` do with bytes from a file.
///
/// The first byte picks what the rest is:
/// - 0: a serialized tokenizer (as a text checkpoint's metadata holds it), then "\n\n\n" and a text.
///   Tokenizer::parse must accept it or throw qkv::Error; when it parses, the text is encoded (or
///   refused with qkv::Error), and BPE must decode it back to exactly the same bytes.
/// - 1: a text to learn byte-level BPE from (a few merges, with and without GPT-2's pre-split), then
///   encode and decode it and a tail of it: both must round-trip exactly, ids in range.
/// - 2: a text to tokenize for training (tokenize_text: the 90/10 split, char or BPE), which must
///   succeed or throw qkv::Error — the path of an arbitrary file given to `--text`.
/// - 3: arbitrary ids (from the bytes) decoded by a small trained BPE: each in range decodes, an
///   id out of range throws qkv::Error.
/// Any violation calls std::abort(), which libFuzzer reports as a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "qkv/data/tokenizer.hpp"
#include "qkv/error.hpp"
#include "qkv/train/text.hpp"

namespace {

using qkv::data::BpeTokenizer;
using qkv::data::Tokenizer;

void check_round_trip(const Tokenizer& t, std::string_view text) {
    const std::vector<std::int32_t> ids = t.encode(text);
    for (const std::int32_t id : ids)
        if (id < 0 || id >= t.vocab_size()) std::abort();
    if (t.decode(ids) != text) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    try {
        switch (data[0] % 4) {
        case 0: {
            const std::size_t cut = rest.find("\n\n\n");
            const std::string_view serialized = rest.substr(0, cut);
            const std::string_view text = cut == std::string_view::npos ? std::string_view() : rest.substr(cut + 3);
            const auto t = Tokenizer::parse(serialized, "fuzz");
            if (t->vocab_size() < 1) std::abort();
            // What parse() accepted must serialize back to something parse() accepts, the same.
            if (Tokenizer::parse(t->serialize(), "fuzz again")->serialize() != t->serialize()) std::abort();
            if (t->kind() == "bpe") {
                check_round_trip(*t, text);
            } else {
                try {
                    check_round_trip(*t, text);
                } catch (const qkv::Error&) {  // a character outside its vocabulary, or invalid UTF-8
                }
            }
            break;
        }
        case 1: {
            for (const bool gpt2 : {true, false}) {
                qkv::data::BpeTrainOptions o;
                o.split = gpt2 ? qkv::data::PreSplit::gpt2 : qkv::data::PreSplit::none;
                o.stop_early = true;
                const BpeTokenizer t = BpeTokenizer::train(rest, 256 + 12, o);
                check_round_trip(t, rest);
                check_round_trip(t, rest.substr(rest.size() / 3));
            }
            break;
        }
        case 2: {
            qkv::TextTrainConfig c;
            c.context = 4;
            c.tokenizer = rest.size() % 2 ? "bpe" : "char";
            c.vocab_size = 260;
            const qkv::TokenizedText t = qkv::tokenize_text(rest, c, "fuzz");
            const std::int64_t V = t.tokenizer->vocab_size();
            for (const auto* ids : {&t.train, &t.validation})
                for (const std::int32_t id : *ids)
                    if (id < 0 || id >= V) std::abort();
            break;
        }
        default: {
            static const BpeTokenizer t = BpeTokenizer::train("the cat sat on the mat; the dog sat on the log", 256 + 10);
            std::vector<std::int32_t> ids;
            bool in_range = true;
            for (std::size_t i = 0; i + 1 < rest.size(); i += 2) {
                ids.push_back(std::int32_t(std::uint8_t(rest[i])) << 1 | std::int32_t(std::uint8_t(rest[i + 1]) & 1));
                in_range = in_range && ids.back() < t.vocab_size();
            }
            try {
                (void)t.decode(ids);
                if (!in_range) std::abort();  // an id out of range must be refused
            } catch (const qkv::Error&) {
                if (in_range) std::abort();
            }
            break;
        }
        }
    } catch (const qkv::Error&) {
    }
    return 0;
}
