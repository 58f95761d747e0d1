// Toy tasks and the corpus: every task's answers are right, seeds reproduce batches, train and
// held-out never share a problem, targets mask everything but the answer, the committed samples
// match the generators, and bad names, lengths, prompts and files give clear errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "qkv/data/tasks.hpp"

using namespace qkv;
using namespace qkv::data;
using Catch::Contains;

namespace {

std::unique_ptr<Task> task(const std::string& name, std::int64_t length = 0, bool reversed = true) {
    return make_task(TaskConfig{name, length, reversed});
}

// The text of an example split at the separator: {prompt, answer}.
std::pair<std::string, std::string> parts(const Task& t, const Example& ex) {
    const std::string text = t.vocab().decode(ex.tokens);
    const auto sep = static_cast<std::size_t>(ex.prompt_length);
    REQUIRE(text[sep] == kSep);
    return {text.substr(0, sep), text.substr(sep + 1)};
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

TEST_CASE("vocabularies: digits are ids 0-9, named specials, round trips", "[tasks]") {
    CHECK(task("copy")->vocab().symbols() == "0123456789=_");
    CHECK(task("reverse")->vocab().size() == 12);
    CHECK(task("sort")->vocab().size() == 12);
    CHECK(task("add")->vocab().symbols() == "0123456789+=_");
    CHECK(task("recall")->vocab().symbols() == "0123456789abcdefghijklmnopqrstuvwxyz?=_");
    for (const auto& name : task_names()) {
        const auto t = task(name);
        const Vocab& v = t->vocab();
        for (int d = 0; d < 10; ++d) CHECK(v.id(static_cast<char32_t>('0' + d)) == d);
        CHECK(v.token(v.sep()) == "=");
        CHECK(v.token(v.pad()) == "_");
        CHECK(v.pad() == v.size() - 1);
    }
    const auto add = task("add");
    const Vocab& v = add->vocab();
    CHECK(v.encode("12+9=") == std::vector<std::int32_t>{1, 2, 10, 9, 11});
    CHECK(v.decode(v.encode("045+678=3270")) == "045+678=3270");

    const Vocab u("ab\xC3\xA9\xE2\x82\xAC\xF0\x9F\x99\x82");  // a b é € 🙂: 1 to 4 UTF-8 bytes each
    CHECK(u.size() == 5);
    CHECK(u.token(2) == "\xC3\xA9");
    CHECK(u.encode("\xF0\x9F\x99\x82" "a") == std::vector<std::int32_t>{4, 0});
    CHECK(u.decode({4, 3, 2, 1, 0}) == "\xF0\x9F\x99\x82\xE2\x82\xAC\xC3\xA9" "ba");
    CHECK(encode_utf8(decode_utf8("h\xC3\xA9llo")) == "h\xC3\xA9llo");
}

TEST_CASE("vocabulary errors name the character, id and position", "[tasks]") {
    const auto reverse = task("reverse");
    const Vocab& v = reverse->vocab();
    CHECK_THROWS_WITH(v.encode("12x"), "Vocab::encode: character 'x' at position 2 is not in the vocabulary \"0123456789=_\"");
    CHECK_THROWS_WITH(v.decode({1, 12}), "Vocab::decode: token id 12 at position 1 is out of range for a vocabulary of 12");
    CHECK_THROWS_WITH(v.decode({-100}), Contains("token id -100 at position 0"));
    CHECK_THROWS_WITH(v.token(99), Contains("token id 99 is out of range"));
    CHECK_THROWS_WITH(v.id('+'), Contains("character '+' is not in the vocabulary"));
    CHECK_THROWS_WITH(Vocab("abca"), "Vocab: character 'a' appears twice (ids 0 and 3)");
    CHECK_THROWS_WITH(Vocab("ab").sep(), Contains("character '=' is not in the vocabulary \"ab\""));
    CHECK_THROWS_WITH(decode_utf8("a\x80"), Contains("byte 0x80 at offset 1 cannot start a character"));
    CHECK_THROWS_WITH(decode_utf8("\xC3"), Contains("truncated character at offset 0"));
    CHECK_THROWS_WITH(decode_utf8("\xC3(", "load"), "load: invalid UTF-8: missing continuation byte at offset 1");
    CHECK_THROWS_WITH(decode_utf8("\xC0\xAF"), Contains("bad code point U+002F"));      // overlong '/'
    CHECK_THROWS_WITH(decode_utf8("\xED\xA0\x80"), Contains("bad code point U+D800"));  // a surrogate
}

TEST_CASE("sequence layout: prompt, separator, answer", "[tasks]") {
    struct Row { std::string name; std::int64_t length, prompt, answer; };
    for (const Row& r : {Row{"copy", 5, 5, 5}, Row{"reverse", 16, 16, 16}, Row{"sort", 6, 6, 6}, Row{"add", 3, 7, 4},
                         Row{"recall", 8, 18, 1}}) {
        const auto t = task(r.name, r.length);
        CHECK(t->name() == r.name);
        CHECK(t->prompt_length() == r.prompt);
        CHECK(t->answer_length() == r.answer);
        CHECK(t->sequence_length() == r.prompt + 1 + r.answer);
        Generator g(3);
        const Example ex = t->sample(Split::train, g);
        CHECK(static_cast<std::int64_t>(ex.tokens.size()) == t->sequence_length());
        CHECK(ex.prompt_length == r.prompt);
        CHECK(ex.tokens[static_cast<std::size_t>(ex.prompt_length)] == t->vocab().sep());
        CHECK(ex.context().size() == static_cast<std::size_t>(r.prompt + 1));
        CHECK(ex.answer().size() == static_cast<std::size_t>(r.answer));
        CHECK_THAT(t->description(), Catch::StartsWith(r.name + " " + std::to_string(r.length)));
    }
    CHECK(task("reverse")->length() == default_length("reverse"));
    CHECK(default_length("reverse") == 16);
    CHECK(default_length("sort") == 6);
    CHECK(default_length("add") == 3);
    CHECK(task("reverse", 4)->description() == "reverse 4 digits: write the digits in reverse order (e.g. 0282=2820)");
    CHECK(task_names() == std::vector<std::string>{"copy", "reverse", "sort", "add", "recall"});
}

TEST_CASE("copy, reverse and sort give the right answers", "[tasks]") {
    Generator g(11);
    for (const std::int64_t L : {3, 7, 16}) {
        const auto copy = task("copy", L), rev = task("reverse", L), sort = task("sort", L);
        for (int i = 0; i < 300; ++i) {
            const auto split = i % 3 == 0 ? Split::heldout : Split::train;
            const auto [p1, a1] = parts(*copy, copy->sample(split, g));
            CHECK(a1 == p1);
            const auto [p2, a2] = parts(*rev, rev->sample(split, g));
            CHECK(a2 == std::string(p2.rbegin(), p2.rend()));
            const auto [p3, a3] = parts(*sort, sort->sample(split, g));
            CHECK(std::is_sorted(a3.begin(), a3.end()));
            CHECK(std::is_permutation(a3.begin(), a3.end(), p3.begin(), p3.end()));
        }
    }
    CHECK(task("sort", 5)->solve("31415") == "11345");
    CHECK(task("reverse", 5)->solve("12345") == "54321");
}

TEST_CASE("add adds, with carries, reversed and plain", "[tasks]") {
    const auto rev = task("add", 3, true), plain = task("add", 3, false);
    CHECK(plain->solve("999+999") == "1998");
    CHECK(rev->solve("999+999") == "8991");
    CHECK(plain->solve("045+678") == "0723");
    CHECK(rev->solve("045+678") == "3270");
    CHECK(plain->solve("000+000") == "0000");
    CHECK(plain->solve("505+505") == "1010");
    CHECK(task("add", 20, false)->solve("99999999999999999999+00000000000000000001") == "100000000000000000000");
    Generator g(5);
    int carries = 0;
    for (const std::int64_t n : {2, 3, 6}) {
        for (const bool reversed : {true, false}) {
            const auto t = task("add", n, reversed);
            for (int i = 0; i < 400; ++i) {
                const auto [prompt, answer] = parts(*t, t->sample(i % 4 == 0 ? Split::heldout : Split::train, g));
                const auto plus = static_cast<std::size_t>(n);
                REQUIRE(prompt[plus] == '+');
                const long long a = std::stoll(prompt.substr(0, plus)), b = std::stoll(prompt.substr(plus + 1));
                const std::string plain_answer = reversed ? std::string(answer.rbegin(), answer.rend()) : answer;
                REQUIRE(answer.size() == plus + 1);
                CHECK(std::stoll(plain_answer) == a + b);
                carries += (a % 10) + (b % 10) >= 10;
            }
        }
    }
    CHECK(carries > 500);  // plenty of examples exercise a carry
}

TEST_CASE("recall answers the value of the queried key", "[tasks]") {
    Generator g(8);
    for (const std::int64_t K : {2, 8, 26}) {
        const auto t = task("recall", K);
        for (int i = 0; i < 300; ++i) {
            const auto [prompt, answer] = parts(*t, t->sample(i % 3 == 0 ? Split::heldout : Split::train, g));
            REQUIRE(prompt.size() == static_cast<std::size_t>(2 * K + 2));
            std::set<char> keys;
            std::string value;
            for (std::size_t k = 0; k < static_cast<std::size_t>(2 * K); k += 2) {
                keys.insert(prompt[k]);
                if (prompt[k] == prompt.back()) value = prompt.substr(k + 1, 1);
            }
            CHECK(keys.size() == static_cast<std::size_t>(K));
            CHECK(prompt[static_cast<std::size_t>(2 * K)] == '?');
            CHECK(answer == value);
        }
    }
    CHECK(task("recall", 3)->solve("c7a2f9?a") == "2");
}

TEST_CASE("same seed, same batches, and another seed, other batches", "[tasks]") {
    const auto t = task("add");
    Generator g1(42), g2(42), g3(43);
    for (int i = 0; i < 3; ++i) {
        const Batch a = make_batch(*t, 16, Split::train, g1), b = make_batch(*t, 16, Split::train, g2);
        CHECK(a.inputs.to_vector<std::int32_t>() == b.inputs.to_vector<std::int32_t>());
        CHECK(a.targets.to_vector<std::int32_t>() == b.targets.to_vector<std::int32_t>());
        CHECK(a.answers == b.answers);
        CHECK(a.inputs.to_vector<std::int32_t>() != make_batch(*t, 16, Split::train, g3).inputs.to_vector<std::int32_t>());
    }
    const auto c1 = make_corpus("the quick brown fox jumps over the lazy dog, again and again");
    Generator h1(1), h2(1);
    CHECK(corpus_batch(c1, 4, 8, Split::train, h1).inputs.to_vector<std::int32_t>() ==
          corpus_batch(c1, 4, 8, Split::train, h2).inputs.to_vector<std::int32_t>());
}

TEST_CASE("train and held-out never share a problem", "[tasks]") {
    const std::vector<TaskConfig> configs = {{"reverse", 3, true}, {"sort", 3, true}, {"add", 2, false}, {"recall", 2, true}};
    for (const TaskConfig& c : configs) {
        const auto t = make_task(c);
        Generator g(7);
        std::set<std::string> train, heldout;
        for (int i = 0; i < 4000; ++i) train.insert(parts(*t, t->sample(Split::train, g)).first);
        for (int i = 0; i < 600; ++i) heldout.insert(parts(*t, t->sample(Split::heldout, g)).first);
        std::vector<std::string> both;
        std::set_intersection(train.begin(), train.end(), heldout.begin(), heldout.end(), std::back_inserter(both));
        INFO(c.name << ": " << train.size() << " train and " << heldout.size() << " held-out prompts");
        CHECK(both.empty());
        CHECK(heldout.size() > 20);
        for (const auto& p : heldout) CHECK(split_of(p) == Split::heldout);
    }
    // About 10% of all problems are held out, and the hash does not care about digit parity.
    const auto t = task("reverse", 6);
    Generator g(9);
    int held = 0, held_even = 0;
    for (int i = 0; i < 20000; ++i) {
        const std::string p = t->draw_prompt(g);
        if (split_of(p) == Split::heldout) {
            ++held;
            held_even += (p.back() - '0') % 2 == 0;
        }
    }
    CHECK(held > 1700);
    CHECK(held < 2300);
    CHECK(held_even > held * 4 / 10);
    CHECK(held_even < held * 6 / 10);
    CHECK(split_name(Split::train) == "train");
    CHECK(split_name(Split::heldout) == "heldout");
}

TEST_CASE("heldout_set: n distinct held-out examples, fixed by the seed", "[tasks]") {
    const auto t = task("reverse", 3);
    const auto set = heldout_set(*t, 40, 1);
    REQUIRE(set.size() == 40);
    std::set<std::vector<std::int32_t>> distinct;
    for (const Example& ex : set) {
        distinct.insert(ex.tokens);
        CHECK(split_of(parts(*t, ex).first) == Split::heldout);
    }
    CHECK(distinct.size() == 40);
    const auto again = heldout_set(*t, 40, 1), other = heldout_set(*t, 40, 2);
    for (std::size_t i = 0; i < set.size(); ++i) CHECK(again[i].tokens == set[i].tokens);
    bool differs = false;
    for (std::size_t i = 0; i < set.size(); ++i) differs = differs || other[i].tokens != set[i].tokens;
    CHECK(differs);
    CHECK(heldout_set(*task("add"), 1000, 0).size() == 1000);
    CHECK(heldout_set(*t, 0, 0).empty());
    CHECK_THROWS_WITH(heldout_set(*t, 51, 1), Contains("asked for 51 distinct held-out examples of reverse length 3"));
    CHECK_THROWS_WITH(heldout_set(*t, -1, 1), Contains("n must be >= 0"));
}

TEST_CASE("batches: targets are the next token on answer positions, -100 elsewhere", "[tasks]") {
    for (const auto& name : task_names()) {
        const auto t = task(name);
        Generator g(2);
        const std::int64_t B = 8, T = t->sequence_length();
        const Batch batch = make_batch(*t, B, Split::train, g);
        REQUIRE(batch.inputs.shape() == Shape{B, T - 1});
        REQUIRE(batch.targets.shape() == Shape{B, T - 1});
        CHECK(batch.inputs.dtype() == i32);
        CHECK(batch.targets.dtype() == i32);
        REQUIRE(batch.answers.size() == static_cast<std::size_t>(B));
        const auto in = batch.inputs.to_vector<std::int32_t>(), tg = batch.targets.to_vector<std::int32_t>();
        const std::int64_t first = t->prompt_length();  // the separator's position predicts answer[0]
        for (std::int64_t b = 0; b < B; ++b) {
            std::vector<std::int32_t> answer;
            for (std::int64_t i = 0; i < T - 1; ++i) {
                const std::int32_t target = tg[static_cast<std::size_t>(b * (T - 1) + i)];
                if (i < first) {
                    CHECK(target == kIgnoreIndex);
                } else {
                    answer.push_back(target);
                    if (i + 1 < T - 1) CHECK(target == in[static_cast<std::size_t>(b * (T - 1) + i + 1)]);
                }
            }
            CHECK(in[static_cast<std::size_t>(b * (T - 1) + first)] == t->vocab().sep());
            CHECK(answer == batch.answers[static_cast<std::size_t>(b)]);
            CHECK(static_cast<std::int64_t>(answer.size()) == t->answer_length());
        }
    }
    CHECK_THROWS_WITH(make_batch(*task("copy"), 0, Split::train, *std::make_unique<Generator>(0)),
                      "make_batch: batch size must be >= 1, got 0");
    CHECK_THROWS_WITH(batch_from_examples({}), Contains("at least one example"));
    const auto r3 = task("reverse", 3), r4 = task("reverse", 4);
    CHECK_THROWS_WITH(batch_from_examples({r3->example("123"), r4->example("1234")}),
                      Contains("example 1 has 9 tokens and prompt length 4, example 0 has 7 and 3"));
}

TEST_CASE("exact match needs every answer token", "[tasks]") {
    const auto t = task("add", 2);
    const Example ex = t->example("19+01");
    CHECK(t->vocab().decode(ex.answer()) == "020");
    CHECK(exact_match(t->vocab().encode("020"), ex));
    CHECK_FALSE(exact_match(t->vocab().encode("021"), ex));
    CHECK_FALSE(exact_match(t->vocab().encode("02"), ex));
    CHECK_FALSE(exact_match(t->vocab().encode("0200"), ex));
    CHECK(t->vocab().decode(ex.context()) == "19+01=");
}

TEST_CASE("bad task names, lengths and prompts give clear errors", "[tasks]") {
    CHECK_THROWS_WITH(task("revers"), "make_task: unknown task 'revers'; valid tasks are: copy, reverse, sort, add, recall");
    CHECK_THROWS_WITH(default_length("x"), Contains("default_length: unknown task 'x'; valid tasks are: copy"));
    CHECK_THROWS_WITH(task("reverse", -1),
                      Contains("make_task: reverse length -1 is out of range: it counts digits and must be in [3, 256]"));
    CHECK_THROWS_WITH(task("add", 65), Contains("add length 65 is out of range: it counts digits per operand and must be in [2, 64]"));
    CHECK_THROWS_WITH(task("recall", 27), Contains("must be in [2, 26]"));
    CHECK_THROWS_WITH(task("reverse", 2), "make_task: reverse with length 2 has only 100 distinct problems; a train/held-out "
                                          "split needs at least 1000 (use length >= 3)");
    CHECK_THROWS_WITH(task("add", 1), Contains("add with length 1 has only 100 distinct problems"));
    CHECK_THROWS_WITH(task("recall", 1), Contains("recall with length 1 has only 260 distinct problems"));
    CHECK_THROWS_WITH(task("reverse", 4)->example("123"), "reverse: invalid prompt \"123\": the prompt must have 4 digits, got 3");
    CHECK_THROWS_WITH(task("sort", 3)->example("1a3"), Contains("has 'a' at position 1, expected a digit"));
    CHECK_THROWS_WITH(task("add", 2)->example("12-34"), Contains("the prompt must be 2 digits, '+', 2 digits"));
    CHECK_THROWS_WITH(task("add", 2)->example("12+3x"), Contains("the second operand has 'x' at position 1"));
    CHECK_THROWS_WITH(task("recall", 2)->example("a1a2?a"), Contains("key 'a' appears twice"));
    CHECK_THROWS_WITH(task("recall", 2)->example("a1b2?c"), Contains("the queried key 'c' is not among the keys"));
    CHECK_THROWS_WITH(task("recall", 2)->example("a1bb?a"), Contains("pair 1 is \"bb\", expected a letter a-z then a digit"));
}

TEST_CASE("corpus: sorted character vocabulary, 90/10 split, next-character targets", "[tasks]") {
    const std::string text = "hello world, hello qkv! caf\xC3\xA9 ";  // 29 characters, one of them two bytes
    const Corpus c = make_corpus(text);
    CHECK(c.vocab.symbols() == " !,acdefhkloqrvw\xC3\xA9");  // sorted by code point; é (U+00E9) last
    CHECK(decode_utf8(text).size() == 29);
    CHECK(c.train.size() == 26);  // floor(0.9 * 29)
    CHECK(c.validation.size() == 3);
    std::vector<std::int32_t> all = c.train;
    all.insert(all.end(), c.validation.begin(), c.validation.end());
    CHECK(c.vocab.decode(all) == text);

    Generator g(4);
    const Batch b = corpus_batch(c, 5, 6, Split::train, g);
    REQUIRE(b.inputs.shape() == Shape{5, 6});
    REQUIRE(b.targets.shape() == Shape{5, 6});
    CHECK(b.answers.empty());
    const auto in = b.inputs.to_vector<std::int32_t>(), tg = b.targets.to_vector<std::int32_t>();
    for (std::size_t r = 0; r < 5; ++r) {
        const std::vector<std::int32_t> x(in.begin() + r * 6, in.begin() + r * 6 + 6), y(tg.begin() + r * 6, tg.begin() + r * 6 + 6);
        const auto at = std::search(c.train.begin(), c.train.end(), x.begin(), x.end());
        REQUIRE(at != c.train.end());  // every window is a piece of the training text
        CHECK(std::equal(y.begin(), y.end(), at + 1));
    }
    const Batch v = corpus_batch(c, 2, 2, Split::heldout, g);
    for (const auto id : v.inputs.to_vector<std::int32_t>())
        CHECK(std::find(c.validation.begin(), c.validation.end(), id) != c.validation.end());
    CHECK_THROWS_WITH(corpus_batch(c, 2, 3, Split::heldout, g),
                      "corpus_batch: the heldout part has 3 characters, fewer than context + 1 = 4");
    CHECK_THROWS_WITH(corpus_batch(c, 0, 4, Split::train, g), Contains("batch size must be >= 1"));
    CHECK_THROWS_WITH(corpus_batch(c, 1, 0, Split::train, g), Contains("context length must be >= 1"));
    CHECK_THROWS_WITH(make_corpus(""), "make_corpus: the text is empty");
    CHECK_THROWS_WITH(make_corpus("abc"), Contains("a text of 3 characters is too short"));
}

TEST_CASE("the shipped corpus loads, and missing and empty files fail clearly", "[tasks]") {
    const std::string path = data_file("corpus.txt");
    CHECK(path == std::string(QKV_SOURCE_DIR) + "/data/corpus.txt");
    const Corpus c = load_corpus(path);
    CHECK(c.path == path);
    CHECK(c.train.size() > 15000);
    CHECK(c.vocab.size() > 40);
    CHECK(c.vocab.size() < 100);
    CHECK(c.validation.size() * 9 <= c.train.size() + 9);
    Generator g(0);
    CHECK(corpus_batch(c, 32, 64, Split::heldout, g).inputs.shape() == Shape{32, 64});

    CHECK_THROWS_WITH(load_corpus("/nonexistent/corpus.txt"),
                      "load_corpus: cannot open '/nonexistent/corpus.txt': No such file or directory");
    CHECK_THROWS_WITH(data_file("no-such-file.txt"), Contains("data_file: 'no-such-file.txt' not found (looked in: "));
    const std::string empty_path = "qkv_test_empty_corpus.txt", bad_path = "qkv_test_bad_corpus.txt";
    std::ofstream(empty_path).close();
    std::ofstream(bad_path) << "caf\xE9 in Latin-1, not UTF-8";
    CHECK_THROWS_WITH(load_corpus(empty_path), "load_corpus: 'qkv_test_empty_corpus.txt' is empty");
    CHECK_THROWS_WITH(load_corpus(bad_path), Contains("load_corpus: 'qkv_test_bad_corpus.txt': invalid UTF-8"));
    std::remove(empty_path.c_str());
    std::remove(bad_path.c_str());
}

// data/samples/*.txt are made by this test: it checks the committed files still equal what the
// generators produce, and rewrites them when QKV_UPDATE_SAMPLES=1 is set.
TEST_CASE("the committed samples match the generators", "[tasks]") {
    const bool update = std::getenv("QKV_UPDATE_SAMPLES") != nullptr;
    const std::vector<std::pair<std::string, TaskConfig>> files = {
        {"copy", {"copy", 0, true}},       {"reverse", {"reverse", 0, true}}, {"sort", {"sort", 0, true}},
        {"add", {"add", 0, true}},         {"add_plain", {"add", 0, false}},  {"recall", {"recall", 0, true}}};
    for (const auto& [label, config] : files) {
        const auto t = make_task(config);
        Generator g(1);
        std::string train, heldout;
        for (int i = 0; i < 10; ++i) train += t->vocab().decode(t->sample(Split::train, g).tokens) + "\n";
        for (const Example& ex : heldout_set(*t, 10, 1)) heldout += t->vocab().decode(ex.tokens) + "\n";
        for (const auto& [suffix, text] : {std::pair{".train.txt", train}, std::pair{".heldout.txt", heldout}}) {
            const std::string path = std::string(QKV_SOURCE_DIR) + "/data/samples/" + label + suffix;
            if (update) std::ofstream(path, std::ios::binary) << text;
            INFO(path << " differs from the generator; rerun this test with QKV_UPDATE_SAMPLES=1 to rewrite it");
            CHECK(read_file(path) == text);
        }
    }
}
