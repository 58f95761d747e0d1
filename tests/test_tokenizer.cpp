// Tokenizers: GPT-2's pre-split by hand, minbpe's published example and tie rule, byte-level round
// trips of any bytes (empty, invalid UTF-8, emoji, Korean, random), the end-of-text token, the
// character tokenizer, serialization, and a parser that rejects every malformed or hostile file with
// a qkv::Error (and survives random corruption).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "qkv/core/generator.hpp"
#include "qkv/data/tasks.hpp"
#include "qkv/data/tokenizer.hpp"
#include "qkv/error.hpp"

using namespace qkv;
using namespace qkv::data;
using Catch::Contains;

namespace {

using Chunks = std::vector<std::string>;
Chunks chunks_of(std::string_view text, PreSplit split = PreSplit::gpt2) {
    Chunks out;
    for (const auto c : pre_split(text, split)) out.emplace_back(c);
    return out;
}

std::string corpus_text() {
    std::ifstream in(std::string(QKV_SOURCE_DIR) + "/data/corpus.txt", std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string random_bytes(Generator& g, std::size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(g.below(256));
    return s;
}

// Test texts that break naive tokenizers.
const std::vector<std::string>& hard_texts() {
    static const std::vector<std::string> texts{
        "",
        "a",
        "\xFF\xFE\x80 abc \xC3",                                   // invalid UTF-8: stray bytes, truncated é
        "\xED\xA0\x80 \xC0\xAF \xF4\x90\x80\x80",                  // a surrogate, an overlong '/', above U+10FFFF
        "\xF0\x9F\x99\x82\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD!",       // 🙂👍🏽!
        "\xEC\x95\x88\xEB\x85\x95\xED\x95\x98\xEC\x84\xB8\xEC\x9A\x94 \xEC\x84\xB8\xEA\xB3\x84",  // 안녕하세요 세계
        std::string("nul\0byte", 8),
        "The fox's lantern, isn't it?  Yes!!! 123 4567\n\n\tend   ",
        std::string(1000, ' ') + "x" + std::string(300, 'a'),
        "<|endoftext|>",
    };
    return texts;
}

}  // namespace

TEST_CASE("char_class: letters, numbers, spaces and the rest", "[tokenizer]") {
    CHECK(char_class(U'a') == CharClass::letter);
    CHECK(char_class(U'Z') == CharClass::letter);
    CHECK(char_class(U'\u00E9') == CharClass::letter);   // é
    CHECK(char_class(U'\uD55C') == CharClass::letter);   // 한 (Hangul)
    CHECK(char_class(U'\u4E2D') == CharClass::letter);   // 中
    CHECK(char_class(U'\u0436') == CharClass::letter);   // ж
    CHECK(char_class(U'7') == CharClass::number);
    CHECK(char_class(U'\u00B2') == CharClass::number);   // ²
    CHECK(char_class(U'\u0663') == CharClass::number);   // Arabic-Indic 3
    CHECK(char_class(U'\uFF15') == CharClass::number);   // fullwidth 5
    CHECK(char_class(U' ') == CharClass::space);
    CHECK(char_class(U'\n') == CharClass::space);
    CHECK(char_class(U'\u00A0') == CharClass::space);    // no-break space
    CHECK(char_class(U'\u3000') == CharClass::space);    // ideographic space
    CHECK(char_class(U'!') == CharClass::other);
    CHECK(char_class(U'\'') == CharClass::other);
    CHECK(char_class(U'\u00D7') == CharClass::other);    // ×
    CHECK(char_class(U'\u2014') == CharClass::other);    // em dash
    CHECK(char_class(U'\u0301') == CharClass::other);    // combining acute accent
    CHECK(char_class(U'\U0001F642') == CharClass::other);  // 🙂
    CHECK(char_class(U'\u3002') == CharClass::other);    // 。
}

TEST_CASE("split_gpt2 follows GPT-2's pattern: words with their space, contractions, whitespace runs", "[tokenizer]") {
    CHECK(chunks_of("Hello world") == Chunks{"Hello", " world"});
    CHECK(chunks_of("I'm sure it's the dog's") == Chunks{"I", "'m", " sure", " it", "'s", " the", " dog", "'s"});
    CHECK(chunks_of("we'll they're you've he'd can't") ==
          Chunks{"we", "'ll", " they", "'re", " you", "'ve", " he", "'d", " can", "'t"});
    CHECK(chunks_of("IT'S") == Chunks{"IT", "'", "S"});  // GPT-2's contractions are lower case only
    CHECK(chunks_of("dog. dog! dog") == Chunks{"dog", ".", " dog", "!", " dog"});
    CHECK(chunks_of("hello!!! ok") == Chunks{"hello", "!!!", " ok"});
    CHECK(chunks_of("year 2024, 12ab") == Chunks{"year", " 2024", ",", " 12", "ab"});
    // A whitespace run gives its last character to the next word; one alone before a word stays alone.
    CHECK(chunks_of("  dog") == Chunks{" ", " dog"});
    CHECK(chunks_of("a\n\nb") == Chunks{"a", "\n", "\n", "b"});
    CHECK(chunks_of("a \n b") == Chunks{"a", " \n", " b"});
    CHECK(chunks_of("\tx") == Chunks{"\t", "x"});
    CHECK(chunks_of("end   ") == Chunks{"end", "   "});
    CHECK(chunks_of(" ") == Chunks{" "});
    // Unicode: Korean words are letters; emoji and punctuation are one "other" run.
    CHECK(chunks_of("\xEC\x95\x88\xEB\x85\x95 \xEC\x84\xB8\xEA\xB3\x84") ==
          Chunks{"\xEC\x95\x88\xEB\x85\x95", " \xEC\x84\xB8\xEA\xB3\x84"});
    CHECK(chunks_of("hi \xF0\x9F\x99\x82\xF0\x9F\x99\x82!") == Chunks{"hi", " \xF0\x9F\x99\x82\xF0\x9F\x99\x82!"});
    CHECK(chunks_of("caf\xC3\xA9 na\xC3\xAFve") == Chunks{"caf\xC3\xA9", " na\xC3\xAFve"});
    // Invalid bytes are "other" characters, one byte each, and stay in their run.
    CHECK(chunks_of("ab\xFF\xFE cd") == Chunks{"ab", "\xFF\xFE", " cd"});
}

TEST_CASE("pre_split: chunks give the text back, and none is longer than kMaxChunkBytes", "[tokenizer]") {
    Generator g(5);
    std::vector<std::string> texts = hard_texts();
    for (int i = 0; i < 200; ++i) texts.push_back(random_bytes(g, g.below(300)));
    texts.push_back(corpus_text());
    for (const PreSplit split : {PreSplit::gpt2, PreSplit::none}) {
        for (const auto& t : texts) {
            std::string joined;
            for (const auto c : pre_split(t, split)) {
                CHECK(!c.empty());
                CHECK(c.size() <= kMaxChunkBytes);
                joined += c;
            }
            CHECK(joined == t);
        }
    }
    // A long run is cut at a character boundary: 40 Korean syllables of 3 bytes → 63 + 57 bytes.
    std::string korean;
    for (int i = 0; i < 40; ++i) korean += "\xEA\xB0\x80";  // 가
    CHECK(chunks_of(korean) == Chunks{korean.substr(0, 63), korean.substr(63)});
}

TEST_CASE("BPE: minbpe's example, aaabdaaabac with 3 merges, encodes as [258, 100, 258, 97, 99]", "[tokenizer]") {
    for (const PreSplit split : {PreSplit::gpt2, PreSplit::none}) {
        const BpeTokenizer t = BpeTokenizer::train("aaabdaaabac", 256 + 3, {split});
        REQUIRE(t.merges().size() == 3);
        CHECK(t.merges()[0].left == 97);   // aa → 256
        CHECK(t.merges()[0].right == 97);
        CHECK(t.merges()[1].left == 256);  // aa a → 257
        CHECK(t.merges()[1].right == 97);
        CHECK(t.merges()[2].left == 257);  // aaa b → 258
        CHECK(t.merges()[2].right == 98);
        CHECK(t.encode("aaabdaaabac") == std::vector<std::int32_t>{258, 100, 258, 97, 99});
        CHECK(t.decode({258, 100, 258, 97, 99}) == "aaabdaaabac");
        CHECK(t.vocab_size() == 260);  // 256 bytes + 3 merges + <|endoftext|>
        CHECK(t.end_of_text() == 259);
        CHECK(t.token_bytes(258) == "aaab");
    }
}

TEST_CASE("BPE: a tie between equally frequent pairs goes to the pair that occurs first (minbpe)", "[tokenizer]") {
    // "cdabcdab": (c,d) and (a,b) both occur twice. (c,d) comes first in the text, so it wins — a
    // rule that preferred the smaller pair (a,b) = (97,98) would pick the other. Then "256 a b 256 a b":
    // (256,a) and (a,b) tie again, and (256,a) comes first.
    const BpeTokenizer t = BpeTokenizer::train("cdabcdab", 256 + 2, {PreSplit::none});
    REQUIRE(t.merges().size() == 2);
    CHECK(t.merges()[0].left == 'c');
    CHECK(t.merges()[0].right == 'd');
    CHECK(t.merges()[1].left == 256);
    CHECK(t.merges()[1].right == 'a');
    // Across chunks: "xy", " ab", " ab", " xy". (x,y), (' ',a) and (a,b) occur twice; (x,y) is first
    // in the text, then (' ',a) before (a,b) inside " ab".
    const BpeTokenizer u = BpeTokenizer::train("xy ab ab xy", 256 + 2);
    REQUIRE(u.merges().size() == 2);
    CHECK(u.merges()[0].left == 'x');
    CHECK(u.merges()[0].right == 'y');
    CHECK(u.merges()[1].left == ' ');
    CHECK(u.merges()[1].right == 'a');
    // The same result as the textbook algorithm — recount every pair of every chunk before each
    // merge, take the first-seen maximum — on a real text.
    const std::string text = corpus_text().substr(0, 6000);
    const BpeTokenizer fast = BpeTokenizer::train(text, 256 + 60);
    std::vector<std::vector<std::int32_t>> ids;
    for (const auto c : split_gpt2(text)) ids.emplace_back(c.begin(), c.end());
    for (auto& w : ids)
        for (auto& x : w) x = static_cast<unsigned char>(static_cast<char>(x));
    for (std::int32_t m = 0; m < 60; ++m) {
        std::vector<std::pair<std::pair<std::int32_t, std::int32_t>, std::int64_t>> counts;  // in first-seen order
        std::map<std::pair<std::int32_t, std::int32_t>, std::size_t> index;
        for (const auto& w : ids)
            for (std::size_t j = 0; j + 1 < w.size(); ++j) {
                const auto p = std::make_pair(w[j], w[j + 1]);
                const auto [it, added] = index.try_emplace(p, counts.size());
                if (added) counts.emplace_back(p, 0);
                ++counts[it->second].second;
            }
        auto best = counts.begin();
        for (auto it = counts.begin(); it != counts.end(); ++it)
            if (it->second > best->second) best = it;
        INFO("merge " << m);
        REQUIRE(fast.merges()[std::size_t(m)].left == best->first.first);
        REQUIRE(fast.merges()[std::size_t(m)].right == best->first.second);
        for (auto& w : ids) {
            std::vector<std::int32_t> out;
            for (std::size_t k = 0; k < w.size();) {
                if (k + 1 < w.size() && std::make_pair(w[k], w[k + 1]) == best->first) out.push_back(256 + m), k += 2;
                else out.push_back(w[k++]);
            }
            w = out;
        }
    }
}

TEST_CASE("BPE: every byte sequence round-trips exactly", "[tokenizer]") {
    const BpeTokenizer t = BpeTokenizer::train(corpus_text(), 512);
    Generator g(11);
    std::vector<std::string> texts = hard_texts();
    for (int i = 0; i < 300; ++i) texts.push_back(random_bytes(g, g.below(200)));
    texts.push_back(corpus_text());
    for (const auto& s : texts) {
        const auto ids = t.encode(s);
        for (const auto id : ids) {
            REQUIRE(id >= 0);
            REQUIRE(id < t.vocab_size() - 1);  // ordinary text never gives <|endoftext|>
        }
        CHECK(t.decode(ids) == s);
        CHECK(t.decode(t.encode_with_specials(s)) == s);
    }
    CHECK(t.encode("").empty());
    // Merges shorten English: the corpus takes far fewer tokens than bytes.
    CHECK(t.encode(corpus_text()).size() < corpus_text().size() / 2);
}

TEST_CASE("BPE: the end-of-text token never comes out of merging ordinary text", "[tokenizer]") {
    std::string text;
    for (int i = 0; i < 50; ++i) text += "The fox ran home.<|endoftext|>The crow sang.<|endoftext|>";
    const BpeTokenizer t = BpeTokenizer::train(text, 256 + 15);
    const std::int32_t eot = t.end_of_text();
    CHECK(eot == t.vocab_size() - 1);
    CHECK(t.specials().size() == 1);
    CHECK(t.token_bytes(eot) == "<|endoftext|>");
    // Its text was cut out before training: no merge built any piece of it.
    for (std::int32_t id = 256; id < eot; ++id) CHECK(t.token_bytes(id).find('|') == std::string::npos);
    // As ordinary text it is just bytes; with specials it is the one token.
    const auto plain = t.encode("a<|endoftext|>b");
    CHECK(std::find(plain.begin(), plain.end(), eot) == plain.end());
    CHECK(t.decode(plain) == "a<|endoftext|>b");
    const auto special = t.encode_with_specials("a<|endoftext|>b<|endoftext|>");
    CHECK(special == std::vector<std::int32_t>{'a', eot, 'b', eot});
    CHECK(t.decode(special) == "a<|endoftext|>b<|endoftext|>");
    CHECK(t.encode_with_specials(text).size() < t.encode(text).size());
}

TEST_CASE("BPE: vocabulary sizes below 256, above the limit or above what the text supports are errors", "[tokenizer]") {
    CHECK_THROWS_WITH(BpeTokenizer::train("abc", 255), Contains("vocab_size must be in [256, 1000000]") && Contains("got 255"));
    CHECK_THROWS_WITH(BpeTokenizer::train("abc", 2000000), Contains("got 2000000"));
    CHECK(BpeTokenizer::train("abc", 256).vocab_size() == 257);  // bytes only, and <|endoftext|>
    // "abab abab": (a,b) → 256, (256,256) → 257, then (' ',257) occurs once: 2 merges at most.
    CHECK_THROWS_WITH(BpeTokenizer::train("abab abab", 300),
                      Contains("vocab_size 300 is more than this text supports") && Contains("after 2 merges") &&
                          Contains("at most 258"));
    BpeTrainOptions early;
    early.stop_early = true;
    CHECK(BpeTokenizer::train("abab abab", 300, early).merges().size() == 2);
    CHECK(BpeTokenizer::train("", 300, early).merges().empty());
}

TEST_CASE("char tokenizer: sorted characters, the corpus's ids, clear errors", "[tokenizer]") {
    const CharTokenizer t = CharTokenizer::train("hello, world");
    CHECK(t.vocab_size() == 9);  // ' ' , d e h l o r w
    CHECK(t.encode("hello") == std::vector<std::int32_t>{4, 3, 5, 5, 6});
    CHECK(t.decode(t.encode("world, hello")) == "world, hello");
    CHECK(t.specials().empty());
    CHECK(t.end_of_text() == -1);
    CHECK(t.encode_with_specials("hello") == t.encode("hello"));
    CHECK_THROWS_WITH(t.encode("help"), Contains("character 'p' at position 3 is not in the vocabulary"));
    CHECK_THROWS_WITH(t.encode("h\xC3"), Contains("invalid UTF-8") && Contains("offset 1"));
    CHECK_THROWS_WITH(t.decode({0, 9}), Contains("token id 9 at position 1 is outside [0, 9)"));
    CHECK_THROWS_WITH(CharTokenizer::train(""), Contains("empty"));
    CHECK_THROWS_WITH(CharTokenizer::train("ok\xFF"), Contains("invalid UTF-8: byte 0xFF at offset 2"));
    const CharTokenizer k = CharTokenizer::train("\xEC\x95\x88\xEB\x85\x95 \xF0\x9F\x99\x82");  // 안녕 🙂
    CHECK(k.vocab_size() == 4);
    CHECK(k.decode(k.encode("\xF0\x9F\x99\x82 \xEC\x95\x88")) == "\xF0\x9F\x99\x82 \xEC\x95\x88");
    // The same vocabulary and ids as load_corpus (tutorial 14).
    const Corpus corpus = make_corpus(corpus_text());
    const CharTokenizer c = CharTokenizer::train(corpus_text());
    CHECK(c.vocab_size() == corpus.vocab.size());
    CHECK(c.encode(corpus_text().substr(0, 500)) == corpus.vocab.encode(corpus_text().substr(0, 500)));
}

TEST_CASE("tokenizers serialize, parse and save/load to the same tokenizer", "[tokenizer]") {
    const std::string text = corpus_text();
    const BpeTokenizer bpe = BpeTokenizer::train(text, 300);
    const CharTokenizer chars = CharTokenizer::train(text);
    const BpeTokenizer plain = BpeTokenizer::train(text.substr(0, 3000), 280, {PreSplit::none});
    for (const Tokenizer* t : std::vector<const Tokenizer*>{&bpe, &chars, &plain}) {
        const auto back = Tokenizer::parse(t->serialize(), "test");
        CHECK(back->kind() == t->kind());
        CHECK(back->vocab_size() == t->vocab_size());
        CHECK(back->serialize() == t->serialize());
        CHECK(back->encode(text) == t->encode(text));
    }
    CHECK_THAT(bpe.serialize(), Catch::StartsWith("qkv-tokenizer 1\nkind bpe\nsplit gpt2\nmerges 44\n"));
    const auto path = (std::filesystem::temp_directory_path() / "qkv_test_tokenizer.txt").string();
    bpe.save(path);
    const auto loaded = Tokenizer::load(path);
    CHECK(loaded->serialize() == bpe.serialize());
    std::filesystem::remove(path);
    CHECK_THROWS_WITH(Tokenizer::load("/nonexistent/tok.txt"), Contains("cannot open '/nonexistent/tok.txt'"));
}

TEST_CASE("Tokenizer::parse rejects malformed and hostile files with a clear error", "[tokenizer]") {
    struct Bad {
        std::string text, message;
    };
    const std::string head = "qkv-tokenizer 1\nkind bpe\nsplit gpt2\n";
    const std::vector<Bad> bad{
        {"", "line 1: unexpected end of the text"},
        {"qkv-tokenizer 2\n", "line 1: expected \"qkv-tokenizer 1\", got \"qkv-tokenizer 2\""},
        {"qkv-tokenizer 1\nkind words\n", "line 2: unknown kind \"words\""},
        {"qkv-tokenizer 1\nkind\n", "line 2: expected \"kind ...\""},
        {"qkv-tokenizer 1\nkind char\nchars 0\n", "line 3: 0 is outside [1, 1114112]"},
        {"qkv-tokenizer 1\nkind char\nchars 3\n97\n98\n", "line 6: unexpected end of the text"},
        {"qkv-tokenizer 1\nkind char\nchars 2\n97\n97\n", "character 'a' appears twice"},
        {"qkv-tokenizer 1\nkind char\nchars 1\n55296\n", "not a Unicode character"},
        {"qkv-tokenizer 1\nkind char\nchars 1\n1114112\n", "1114112 is outside [0, 1114111]"},
        {"qkv-tokenizer 1\nkind char\nchars 1\n-5\n", "-5 is outside"},
        {"qkv-tokenizer 1\nkind char\nchars 1\n5x\n", "expected a number, got \"5x\""},
        {"qkv-tokenizer 1\nkind char\nchars 999999\n97\n", "999999 characters announced, but the text is too short"},
        {"qkv-tokenizer 1\nkind char\nchars 1\n97\nextra\n", "line 5: unexpected text after the end"},
        {"qkv-tokenizer 1\nkind bpe\nsplit regex\n", "unknown split \"regex\""},
        {head + "merges 1\n97 256\nspecial <|endoftext|>\n", "line 5: 256 is outside [0, 255]"},
        {head + "merges 2\n97 98\n97 98\nspecial <|endoftext|>\n", "merge 1 (97 98) repeats an earlier merge"},
        {head + "merges 1\n97,98\nspecial <|endoftext|>\n", "expected two token ids"},
        {head + "merges 1\n97 98\n", "line 6: unexpected end of the text"},
        {head + "merges 1\n97 98\nspecial <|end|>\n", "expected \"special <|endoftext|>\""},
        {head + "merges 1000000\n97 98\n", "1000000 is outside [0, 999744]"},
        {head + "merges 900000\n97 98\n", "900000 merges announced, but the text is too short"},
        {head + "merges 1\n97 98\nspecial <|endoftext|>\n\n", "line 7: unexpected text after the end"},
        {"qkv-tokenizer 1\r\n", "got \"qkv-tokenizer 1\\x0D\""},
    };
    for (const auto& b : bad) {
        INFO(b.text);
        CHECK_THROWS_WITH(Tokenizer::parse(b.text, "f.txt"), Contains("tokenizer 'f.txt': ") && Contains(b.message));
    }
    // Merges that double a token's length each time would need 2^n bytes: refused past a chunk's size.
    std::string doubling = head + "merges 7\n97 97\n";
    for (int i = 0; i < 6; ++i) doubling += fmt::format("{} {}\n", 256 + i, 256 + i);
    doubling += "special <|endoftext|>\n";
    CHECK_THROWS_WITH(Tokenizer::parse(doubling, "f.txt"), Contains("makes a token of 128 bytes, longer than a chunk (64 bytes)"));
}

TEST_CASE("Tokenizer::parse survives random corruption: it parses or throws qkv::Error", "[tokenizer]") {
    const std::string good = BpeTokenizer::train(corpus_text().substr(0, 4000), 300).serialize();
    const std::string good_chars = CharTokenizer::train("hello world").serialize();
    Generator g(3);
    int parsed = 0, rejected = 0;
    for (int i = 0; i < 3000; ++i) {
        std::string s = i % 2 ? good : good_chars;
        const int edits = 1 + int(g.below(4));
        for (int e = 0; e < edits && !s.empty(); ++e) {
            const std::size_t at = g.below(s.size());
            switch (g.below(4)) {
                case 0: s[at] = static_cast<char>(g.below(256)); break;              // flip a byte
                case 1: s.erase(at, 1 + g.below(8)); break;                          // cut
                case 2: s.insert(s.begin() + std::ptrdiff_t(at), "0123456789 \n-"[g.below(13)]); break;  // insert
                default: s.resize(at); break;                                        // truncate
            }
        }
        try {
            const auto t = Tokenizer::parse(s, "fuzz");
            const std::string probe = "The fox's 123 \xFF\xC3 lantern";
            if (t->kind() == "bpe") CHECK(t->decode(t->encode(probe)) == probe);
            ++parsed;
        } catch (const Error&) {
            ++rejected;
        }
    }
    CHECK(parsed + rejected == 3000);
    CHECK(rejected > 1000);
}
