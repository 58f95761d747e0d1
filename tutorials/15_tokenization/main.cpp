/// \file
/// \brief Tutorial 15: tokenization — characters, bytes and byte-pair encoding (BPE), on the
/// corpus of tutorial 14.
///
/// A model reads integers. This program shows three ways to turn text into them and what each
/// costs: characters (a tiny vocabulary that cannot encode what it never saw), bytes (any input,
/// but long sequences), and BPE, which starts from bytes and merges the most frequent adjacent
/// pairs — first by hand with the textbook loop on minbpe's example, then with the library on the
/// corpus, after cutting the text into GPT-2's chunks. It ends with the trade-off a vocabulary size
/// makes (shorter sequences, bigger embedding tables), byte-level round trips of awkward input, and
/// the end-of-text token. No training, so it runs in a second. See README.md.
#include <qkv/qkv.hpp>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace qkv;
using namespace qkv::data;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// A token's bytes, printable on one line: space as '·', newline as '↵', other control and invalid
// bytes as \xNN.
std::string show(std::string_view bytes) {
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        const auto c = static_cast<unsigned char>(bytes[i]);
        if (c == ' ') out += "\xC2\xB7";            // ·
        else if (c == '\n') out += "\xE2\x86\xB5";  // ↵
        else if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02X}", c);
        else out += static_cast<char>(c);  // printable ASCII, or part of a UTF-8 character
    }
    return out;
}

// The pieces of a text as a tokenizer cuts it: |The|·fox|...
std::string pieces(const Tokenizer& t, const std::vector<std::int32_t>& ids) {
    std::string out = "|";
    for (const auto id : ids) out += show(t.token_bytes(id)) + "|";
    return out;
}

std::string hex_bytes(std::string_view s) {
    std::string out;
    for (const char c : s) out += fmt::format("{}{:02X}", out.empty() ? "" : " ", static_cast<unsigned char>(c));
    return out;
}

// [naive]
// The textbook BPE loop on one sequence of ids: count every adjacent pair, take the most frequent
// (on a tie, the pair seen first: minbpe's rule), replace it left to right by a new id, repeat.
struct Merge {
    std::pair<std::int32_t, std::int32_t> pair;
    std::int64_t count;
};
std::vector<Merge> naive_bpe(std::vector<std::int32_t> ids, int merges) {
    std::vector<Merge> out;
    for (int m = 0; m < merges; ++m) {
        std::vector<std::pair<std::pair<std::int32_t, std::int32_t>, std::int64_t>> counts;  // first-seen order
        for (std::size_t i = 0; i + 1 < ids.size(); ++i) {
            const auto p = std::make_pair(ids[i], ids[i + 1]);
            auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == p; });
            if (it == counts.end()) counts.emplace_back(p, 1);
            else ++it->second;
        }
        auto best = counts.begin();
        for (auto it = counts.begin(); it != counts.end(); ++it)
            if (it->second > best->second) best = it;  // strictly greater: the first maximum wins
        const std::int32_t made = 256 + m;
        std::vector<std::int32_t> next;
        for (std::size_t i = 0; i < ids.size();) {
            if (i + 1 < ids.size() && std::make_pair(ids[i], ids[i + 1]) == best->first) next.push_back(made), i += 2;
            else next.push_back(ids[i++]);
        }
        ids = next;
        out.push_back({best->first, best->second});
    }
    return out;
}
// [naive]

}  // namespace

int main() {
    try {
        const std::string corpus = read_file(data_file("corpus.txt"));

        // [chars]
        fmt::print("== 1. Characters ==\n");
        const CharTokenizer chars = CharTokenizer::train(corpus);
        fmt::print("corpus: {} bytes, {} distinct characters, so {} tokens\n", corpus.size(), chars.vocab_size(),
                   chars.vocab_size());
        const std::string sentence = "The fox's lantern glowed.";
        const auto char_ids = chars.encode(sentence);
        fmt::print("\"{}\": {} tokens {}\n", sentence, char_ids.size(), pieces(chars, char_ids));
        try {
            chars.encode("The fox ate 3 figs.");
        } catch (const Error& e) {
            fmt::print("\"The fox ate 3 figs.\": {}\n", e.what());
        }
        fmt::print("\n");
        // [chars]

        // [bytes]
        fmt::print("== 2. Bytes ==\n");
        for (const std::string s : {"fox", "caf\xC3\xA9", "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4", "\xF0\x9F\x99\x82"})
            fmt::print("{:<6} {} character{}, {} UTF-8 bytes: {}\n", s, decode_utf8(s).size(),
                       decode_utf8(s).size() == 1 ? "" : "s", s.size(), hex_bytes(s));
        fmt::print("\n");
        // [bytes]

        // [by_hand]
        fmt::print("== 3. Byte-pair encoding by hand: \"aaabdaaabac\", 3 merges ==\n");
        const std::string toy = "aaabdaaabac";
        const std::vector<std::int32_t> toy_bytes(toy.begin(), toy.end());
        const BpeTokenizer toy_bpe = BpeTokenizer::train(toy, 256 + 3);
        const auto naive = naive_bpe(toy_bytes, 3);
        for (std::size_t m = 0; m < naive.size(); ++m) {
            const auto [a, b] = naive[m].pair;
            fmt::print("merge {}: ({} '{}', {} '{}') occurs {} times -> {} '{}'\n", m + 1, a, toy_bpe.token_bytes(a), b,
                       toy_bpe.token_bytes(b), naive[m].count, 256 + m, toy_bpe.token_bytes(std::int32_t(256 + m)));
        }
        bool same = true;
        for (std::size_t m = 0; m < naive.size(); ++m)
            same = same && naive[m].pair == std::make_pair(toy_bpe.merges()[m].left, toy_bpe.merges()[m].right);
        const auto toy_ids = toy_bpe.encode(toy);
        fmt::print("the library learned the same merges: {}\n", same);
        fmt::print("encode(\"{}\") = [{}]: {} bytes became {} tokens\n\n", toy, fmt::join(toy_ids, ", "), toy.size(),
                   toy_ids.size());
        // [by_hand]

        // [split]
        fmt::print("== 4. Chunks first: GPT-2's pre-split ==\n");
        const std::string text = "The fox's lantern \xE2\x80\x94 isn't it?  Yes!!! 42 cats";
        std::string cut = "|";
        for (const auto c : split_gpt2(text)) cut += show(c) + "|";
        fmt::print("{}\n\n", cut);
        // [split]

        // [corpus]
        fmt::print("== 5. BPE on the corpus: 256 merges ==\n");
        const BpeTokenizer bpe = BpeTokenizer::train(corpus, 512);
        auto merged = [&](std::size_t from, std::size_t to) {
            std::string s;
            for (std::size_t m = from; m < to; ++m) s += fmt::format(" {}", show(bpe.token_bytes(std::int32_t(256 + m))));
            return s;
        };
        fmt::print("merges 1-10:   {}\n", merged(0, 10));
        fmt::print("merges 101-110:{}\n", merged(100, 110));
        fmt::print("merges 247-256:{}\n", merged(246, 256));
        const auto bpe_ids = bpe.encode(sentence);
        fmt::print("\"{}\": {} tokens {}\n", sentence, bpe_ids.size(), pieces(bpe, bpe_ids));
        const std::string unseen = "The zebra ate 3 figs.";
        const auto unseen_ids = bpe.encode(unseen);
        fmt::print("\"{}\": {} tokens {}\n\n", unseen, unseen_ids.size(), pieces(bpe, unseen_ids));
        // [corpus]

        // [tradeoff]
        fmt::print("== 6. Vocabulary size: shorter sequences, bigger tables ==\n");
        const std::int64_t C = 96;  // d_model of qkv train --text's default model
        fmt::print("{:<12} {:>6} {:>14} {:>12} {:>16} {:>15}\n", "tokenizer", "V", "corpus tokens", "bytes/token",
                   "64 tokens hold", "2·V·C params");
        auto row = [&](const std::string& name, const Tokenizer& t) {
            const auto n = t.encode(corpus).size();
            const double per = double(corpus.size()) / double(n);
            fmt::print("{:<12} {:>6} {:>14} {:>12.2f} {:>10.0f} bytes {:>15}\n", name, t.vocab_size(), n, per, 64 * per,
                       2 * t.vocab_size() * C);
        };
        row("characters", chars);
        row("bytes", BpeTokenizer::train(corpus, 256));
        for (const std::int64_t v : {300, 512, 1024}) row(fmt::format("BPE {}", v), BpeTokenizer::train(corpus, v));
        // Merge until no pair occurs twice: the most this text can teach.
        BpeTrainOptions all;
        all.stop_early = true;
        const BpeTokenizer most = BpeTokenizer::train(corpus, 100000, all);
        row(fmt::format("BPE {}", 256 + most.merges().size()), most);
        fmt::print("(after {} merges no pair occurs twice: --vocab-size {} is the most this corpus supports)\n\n",
                   most.merges().size(), 256 + most.merges().size());
        // [tradeoff]

        // [roundtrip]
        fmt::print("== 7. Bytes in, the same bytes out ==\n");
        const std::vector<std::pair<std::string, std::string>> awkward{
            {"empty", ""},
            {"invalid UTF-8", "\xFF\xFE caf\xC3"},
            {"emoji", "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD \xF0\x9F\x99\x82"},
            {"Korean", "\xEC\x95\x88\xEB\x85\x95\xED\x95\x98\xEC\x84\xB8\xEC\x9A\x94"},
        };
        for (const auto& [name, s] : awkward) {
            const auto ids = bpe.encode(s);
            fmt::print("{:<14} {:>2} bytes -> {:>2} tokens -> the same bytes: {}\n", name, s.size(), ids.size(),
                       bpe.decode(ids) == s);
        }
        fmt::print("\n");
        // [roundtrip]

        // [special]
        fmt::print("== 8. The end-of-text token ==\n");
        const std::int32_t eot = bpe.end_of_text();
        fmt::print("<|endoftext|> is token {} (the last; no merge makes it)\n", eot);
        fmt::print("as ordinary text:      [{}]\n", fmt::join(bpe.encode("<|endoftext|>"), ", "));
        fmt::print("with special tokens:   [{}]\n", fmt::join(bpe.encode_with_specials("<|endoftext|>"), ", "));
        // [special]
        return 0;
    } catch (const Error& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 1;
    }
}
