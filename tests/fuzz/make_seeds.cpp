/// \file
/// \brief Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/ (run it from the
/// repository root after changing a format: `build-fuzz/tests/fuzz/fuzz_make_seeds tests/fuzz/corpus`).
///
/// Seeds are small valid inputs that show the fuzzer the shape of what it mutates: headers with
/// every dtype, metadata, escapes and empty tensors; files written by qkv (with the checksum) and by
/// "another program" (without); and tiny training checkpoints, fresh and after a few steps.
#include <cstdio>
#include <string>
#include <vector>

#include "qkv/io/safetensors.hpp"
#include "qkv/data/tokenizer.hpp"
#include "qkv/train/train.hpp"

namespace {

std::string read_all(const std::string& path) {
    std::string out;
    if (FILE* f = std::fopen(path.c_str(), "rb")) {
        char buf[4096];
        for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
        std::fclose(f);
    }
    return out;
}

void write_all(const std::string& path, const std::string& bytes) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
        std::fprintf(stderr, "cannot write %s\n", path.c_str());
        std::exit(1);
    }
    std::fclose(f);
}

// A safetensors file as another writer lays it out: no qkv checksum.
std::string foreign(std::string header, const std::string& data) {
    header.append((8 - header.size() % 8) % 8, ' ');
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[std::size_t(i)] = char((header.size() >> (8 * i)) & 0xFF);
    return out + header + data;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace qkv;
    const std::string dir = argc > 1 ? argv[1] : "tests/fuzz/corpus";
    // JSON headers.
    const std::vector<std::string> json = {
        "{}",
        R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})",
        R"({"__metadata__":{"format":"pt","qkv.crc32":"0123abcd","qkv.format":"safetensors/1"},"b":{"dtype":"BOOL","shape":[],"data_offsets":[0,1]}})",
        R"({"a\u00e9\ud83d\ude00":{"dtype":"I32","shape":[0,4],"data_offsets":[0,0]},"x":[1,[2,[3]],"s\n\t\"\\"]})",
        R"([18446744073709551615, 0, "", {"k": []}])",
    };
    for (std::size_t i = 0; i < json.size(); ++i) write_all(dir + "/json/seed" + std::to_string(i) + ".json", json[i]);

    // Safetensors files: from qkv (with the checksum) and from elsewhere.
    const std::string tmp = dir + "/.seed.tmp.safetensors";
    io::save_safetensors(tmp, {{"w", from({1, 2, 3, 4, 5, 6}, {2, 3})},
                               {"d", from({0.5, -0.25}, {2}, f64)},
                               {"i", from(std::vector<std::int32_t>{7, -8, 9}, {3})},
                               {"m", from(std::vector<bool>{true, false}, {2})},
                               {"s", scalar(3.5)},
                               {"e", zeros({0, 5})}},
                         {{"note", "a seed"}});
    write_all(dir + "/safetensors/qkv_all_dtypes.safetensors", read_all(tmp));
    write_all(dir + "/safetensors/foreign.safetensors",
              foreign(R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                      R"("m":{"dtype":"BOOL","shape":[3],"data_offsets":[8,11]}})",
                      std::string("\0\0\x80?\0\0\0@\1\0\1", 11)));
    write_all(dir + "/safetensors/empty.safetensors", foreign("{}", ""));
    // The element types PyTorch writes that qkv converts on reading: I64 [-7, 2^31 - 1], F16 [1, -2],
    // BF16 [1], U8 [255].
    write_all(dir + "/safetensors/torch_dtypes.safetensors",
              foreign(R"({"i":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},"h":{"dtype":"F16","shape":[2],)"
                      R"("data_offsets":[16,20]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[20,22]},)"
                      R"("u":{"dtype":"U8","shape":[1],"data_offsets":[22,23]}})",
                      std::string("\xf9\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f\0\0\0\0\0\x3c\0\xc0\x80\x3f\xff", 23)));

    // Training checkpoints: a tiny run, fresh and after three steps (optimizer state and curve).
    TaskTrainConfig c;
    c.task = {"copy", 4, true};
    c.layers = 1;
    c.heads = 2;
    c.dim = 8;
    c.batch = 4;
    c.max_steps = 10;
    c.eval_every = 2;
    c.eval_size = 8;
    c.log_every = 1;
    TaskTrainer fresh(c);
    fresh.save(tmp);
    write_all(dir + "/checkpoint/fresh.safetensors", read_all(tmp));
    TaskTrainer trained(c);
    trained.set_max_steps(3);
    trained.run();
    trained.save(tmp);
    write_all(dir + "/checkpoint/three_steps.safetensors", read_all(tmp));
    std::remove(tmp.c_str());
    // Tokenizer inputs (fuzz_tokenizer.cpp): the first byte picks the mode.
    const std::string text = "The fox said: \"we'll run 42 laps\" \xC3\xA9t\xC3\xA9 \xF0\x9F\x99\x82 \xEC\x95\x88\xEB\x85\x95\n\n  end";
    const std::string sep = "\n\n\n";
    const std::vector<std::pair<std::string, std::string>> tokenizer_seeds = {
        {"char", std::string(1, '\0') + data::CharTokenizer::train("hello world").serialize() + sep + "hello"},
        {"bpe", std::string(1, '\0') + data::BpeTokenizer::train(text + text, 256 + 8).serialize() + sep + text},
        {"bpe_train", std::string(1, '\1') + text},
        {"text_char", std::string(1, '\2') + text + text + text},
        {"text_bpe", std::string(1, '\2') + text + text + text + "!"},
        {"ids", std::string(1, '\3') + std::string("\x01\x00\x80\x01\x02\x01\xff\x01", 8)},
    };
    for (const auto& [name, bytes] : tokenizer_seeds) write_all(dir + "/tokenizer/" + name, bytes);
    return 0;
}
