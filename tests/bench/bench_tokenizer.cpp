/// \file
/// \brief Tokenizer throughput: byte-level BPE training, encoding and decoding in MB/s on a file, for
/// a few vocabulary sizes (median of several runs), and the character tokenizer's encoding for
/// comparison. Not run by ctest.
///
/// Usage: bench_tokenizer --text FILE [--vocab N ...] [--runs N]
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "qkv/data/tokenizer.hpp"
#include "qkv/io/file.hpp"
#include "qkv/train/text.hpp"

using namespace qkv;
using namespace qkv::data;

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Median seconds of f() over `runs` calls; f's last result is kept in `out`.
template <class F, class R>
double seconds(int runs, F&& f, R& out) {
    std::vector<double> s;
    for (int i = 0; i < runs; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        out = f();
        s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return median(s);
}

}  // namespace

int main(int argc, char** argv) {
    std::string path;
    std::vector<std::int64_t> vocabs;
    int runs = 3;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--text" && i + 1 < argc) path = argv[++i];
        else if (a == "--vocab" && i + 1 < argc) vocabs.push_back(std::stoll(argv[++i]));
        else if (a == "--runs" && i + 1 < argc) runs = std::max(1, std::stoi(argv[++i]));
        else {
            fmt::print(stderr, "usage: bench_tokenizer --text FILE [--vocab N ...] [--runs N]\n");
            return 2;
        }
    }
    if (path.empty()) {
        fmt::print(stderr, "usage: bench_tokenizer --text FILE [--vocab N ...] [--runs N]\n");
        return 2;
    }
    if (vocabs.empty()) vocabs = {512, 1024, 4096, 16384};
    try {
        const std::string text = io::read_file(path, "text");
        const double mb = double(text.size()) / 1e6;
        fmt::print("{}: {:.2f} MB, {} distinct chunks of {} (GPT-2 pre-split); median of {} runs\n", path, mb,
                   [&] {
                       const auto c = split_gpt2(text);
                       std::vector<std::string_view> u(c.begin(), c.end());
                       std::sort(u.begin(), u.end());
                       return std::unique(u.begin(), u.end()) - u.begin();
                   }(),
                   split_gpt2(text).size(), runs);
        fmt::print("{:>8} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}\n", "vocab", "merges", "train s", "train MB/s",
                   "encode s", "enc MB/s", "dec MB/s", "bytes/token");
        for (const auto v : vocabs) {
            BpeTrainOptions o;
            o.stop_early = true;
            BpeTokenizer t({}, PreSplit::gpt2);
            const double train = seconds(runs, [&] { return BpeTokenizer::train(text, v, o); }, t);
            std::vector<std::int32_t> ids;
            const double enc = seconds(runs, [&] { return t.encode(text); }, ids);
            std::string back;
            const double dec = seconds(runs, [&] { return t.decode(ids); }, back);
            if (back != text) fmt::print(stderr, "bench_tokenizer: round trip FAILED at vocab {}\n", v);
            fmt::print("{:>8} {:>8} {:>10.3f} {:>10.1f} {:>10.3f} {:>10.1f} {:>10.1f} {:>12.2f}\n", v, t.merges().size(),
                       train, mb / train, enc, mb / enc, mb / dec, double(text.size()) / double(ids.size()));
        }
        std::vector<std::int32_t> ids;
        CharTokenizer chars = CharTokenizer::train("a");
        std::string utf8_error;
        try {
            chars = CharTokenizer::train(text);
            const double enc = seconds(runs, [&] { return chars.encode(text); }, ids);
            fmt::print("character tokenizer ({} characters): encode {:.3f} s, {:.1f} MB/s\n", chars.vocab_size(), enc, mb / enc);
        } catch (const Error& e) {
            fmt::print("character tokenizer: not UTF-8 ({})\n", e.what());
        }
    } catch (const Error& e) {
        fmt::print(stderr, "bench_tokenizer: {}\n", e.what());
        return 1;
    }
}
