// Checkpoints: the safetensors byte layout, round trips, exact resume of training, and every way a
// file can be wrong (truncated, bit-flipped, mis-shaped) ending in a qkv::Error — never a crash.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <set>

#include <unistd.h>

#include "qkv/io/checkpoint.hpp"
#include "qkv/qkv.hpp"

using namespace qkv;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

// A fresh directory for one test, removed afterwards.
struct TempDir {
    fs::path path;
    TempDir() {
        static int counter = 0;
        path = fs::temp_directory_path() / fmt::format("qkv_test_checkpoint_{}_{}", ::getpid(), counter++);
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
    std::string operator/(const std::string& name) const { return (path / name).string(); }
    std::vector<std::string> files() const {
        std::vector<std::string> out;
        for (const auto& e : fs::directory_iterator(path)) out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }
};

std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), std::streamsize(bytes.size()));
}

// A safetensors file from a header and data, as any writer would lay it out (no qkv checksum).
std::string make_file(std::string header, const std::string& data) {
    header.append((8 - header.size() % 8) % 8, ' ');
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[std::size_t(i)] = char((header.size() >> (8 * i)) & 0xFF);
    return out + header + data;
}

// Parse from an exact-size heap copy, so that under ASan a read one byte past the end is reported.
io::SafeTensors parse_exact(const std::string& bytes) {
    std::unique_ptr<char[]> copy(new char[bytes.size() + (bytes.empty() ? 1 : 0)]);
    if (!bytes.empty()) std::memcpy(copy.get(), bytes.data(), bytes.size());
    return io::parse_safetensors(std::string_view(copy.get(), bytes.size()), "test");
}

bool same_bits(const Tensor& a, const Tensor& b) {
    return a.dtype() == b.dtype() && a.shape() == b.shape() &&
           std::memcmp(a.raw_data(), b.raw_data(), std::size_t(a.numel()) * dtype_size(a.dtype())) == 0;
}

// A Linear-like layer and a two-layer MLP: y = tanh(x W₁ + b₁) W₂ + b₂.
struct Lin : nn::Module {
    Tensor weight, bias;
    Lin(std::int64_t in, std::int64_t out, Generator& g) {
        const double a = 1.0 / std::sqrt(double(in));
        weight = register_parameter("weight", uniform({in, out}, -a, a, g));
        bias = register_parameter("bias", uniform({out}, -a, a, g));
    }
    Tensor forward(const Tensor& x) const { return matmul(x, weight) + bias; }
};
struct Mlp : nn::Module {
    Lin fc1, fc2;
    explicit Mlp(std::uint64_t seed) : Mlp(Generator(seed)) {}
    explicit Mlp(Generator g) : fc1(4, 8, g), fc2(8, 1, g) {
        register_module("fc1", fc1);
        register_module("fc2", fc2);
    }
    Tensor forward(const Tensor& x) const { return fc2.forward(tanh(fc1.forward(x))); }
};

// One training step on a fresh random batch drawn from the training state's generator; returns the loss.
double train_step(Mlp& model, optim::Optimizer& opt, io::TrainState& ts) {
    const optim::WarmupCosineLR schedule{.peak_lr = 0.05, .min_lr = 0.005, .warmup_steps = 3, .total_steps = 20};
    const Tensor x = randn({16, 4}, ts.rng);
    const Tensor y = sum(x, 1, true) * 0.5;
    opt.set_lr(schedule.lr_at(ts.step));
    opt.zero_grad();
    const Tensor d = model.forward(x) - y;
    const Tensor loss = mean(d * d);
    loss.backward();
    optim::clip_grad_norm(opt.params(), 1.0);
    opt.step();
    ++ts.step;
    return loss.item();
}

// A trained model with optimizer and training state, saved to path.
void save_trained(const std::string& path, int steps = 3) {
    Mlp model(1);
    optim::AdamW opt(model.named_parameters());
    io::TrainState ts{0, Generator(7), Tensor()};
    for (int i = 0; i < steps; ++i) train_step(model, opt, ts);
    io::save_checkpoint(path, model, &opt, &ts);
}

}  // namespace

// ---- the format ---------------------------------------------------------------------------------

TEST_CASE("safetensors byte layout equals a hand-built file", "[checkpoint]") {
    // One F32 tensor "a" = [1, -2]. The file, byte by byte, as the safetensors spec lays it out:
    //   8 bytes   header length N = 128, little-endian u64: 80 00 00 00 00 00 00 00
    //   N bytes   the JSON header (123 bytes) + 5 spaces, so the data starts at 8 + 128 = 136, a multiple of 8
    //   8 bytes   the data: 1.0f = 00 00 80 3f, -2.0f = 00 00 00 c0 (IEEE 754, little-endian)
    // qkv adds two metadata entries; "1afaf55c" is the CRC-32 of the whole file with "00000000" in
    // its place (checked independently with Python's zlib.crc32). Readers ignore metadata they do
    // not know, so PyTorch's safetensors reads this file as {"a": tensor([1., -2.])}.
    const std::string json =
        R"({"__metadata__":{"qkv.crc32":"1afaf55c","qkv.format":"safetensors/1"},)"
        R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    REQUIRE(json.size() == 123);
    std::string expected("\x80\0\0\0\0\0\0\0", 8);
    expected += json + std::string(5, ' ');
    expected += std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);
    REQUIRE(expected.size() == 144);

    TempDir dir;
    io::save_safetensors(dir / "a.safetensors", {{"a", from({1.0, -2.0}, {2})}});
    CHECK(read_bytes(dir / "a.safetensors") == expected);
    const auto back = io::load_safetensors(dir / "a.safetensors");
    REQUIRE(back.tensors.size() == 1);
    CHECK(back.tensors[0].first == "a");
    CHECK(back.tensors[0].second.to_vector<float>() == std::vector<float>{1.0f, -2.0f});
    CHECK(back.metadata.empty());  // qkv's own keys are not reported as user metadata
}

TEST_CASE("a file from another writer (no qkv metadata) loads", "[checkpoint]") {
    // What Python's safetensors writes for {"w": torch.tensor(0.5, dtype=torch.float64)}: a 0-d tensor.
    std::string data(8, '\0');
    const double half = 0.5;
    std::memcpy(data.data(), &half, 8);
    const auto st = parse_exact(make_file(R"({"w":{"dtype":"F64","shape":[],"data_offsets":[0,8]}})", data));
    REQUIRE(st.tensors.size() == 1);
    CHECK(st.tensors[0].second.dim() == 0);
    CHECK(st.tensors[0].second.item() == 0.5);
    // Whitespace, escapes and key order are the writer's choice.
    const auto st2 = parse_exact(make_file(
        "{ \"__metadata__\" : { \"k\\u00e9y\" : \"a\\\"b\\n\" } ,\n \"x\\/y\": {\"shape\": [1], \"data_offsets\": [0, 4], \"dtype\": \"I32\"} }",
        std::string("\x07\0\0\0", 4)));
    CHECK(st2.metadata.at("k\xc3\xa9y") == "a\"b\n");
    CHECK(st2.tensors[0].first == "x/y");
    CHECK(st2.tensors[0].second.at({0}) == 7.0);
}

// The value of a binary16 bit pattern straight from the format's definition (IEEE 754-2008,
// 3.4): (-1)^s · 2^(e-15) · (1 + m/1024) for e = 1..30, (-1)^s · 2^-14 · m/1024 for e = 0. Written
// with ldexp, not bit shuffling, so it checks half_to_float() from a different angle.
double half_by_definition(std::uint16_t h) {
    const int s = h >> 15, e = (h >> 10) & 0x1F, m = h & 0x3FF;
    const double sign = s ? -1.0 : 1.0;
    if (e == 0x1F) return m == 0 ? sign * std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
    if (e == 0) return sign * std::ldexp(double(m), -24);
    return sign * std::ldexp(1.0 + double(m) / 1024.0, e - 15);
}

TEST_CASE("F16 to float: all 65 536 bit patterns equal the format's definition", "[checkpoint]") {
    int checked = 0;
    for (std::uint32_t h = 0; h <= 0xFFFF; ++h) {
        const float got = io::half_to_float(std::uint16_t(h));
        const double want = half_by_definition(std::uint16_t(h));
        INFO("F16 bits 0x" << std::hex << h);
        if (std::isnan(want)) {
            CHECK(std::isnan(got));
        } else {
            CHECK(double(got) == want);
            CHECK(std::signbit(got) == ((h >> 15) != 0));  // -0 stays -0
        }
        ++checked;
    }
    CHECK(checked == 65536);
    // A few by name: 1, -2, the largest finite (65504), the smallest subnormal (2^-24) and normal (2^-14).
    CHECK(io::half_to_float(0x3C00) == 1.0f);
    CHECK(io::half_to_float(0xC000) == -2.0f);
    CHECK(io::half_to_float(0x7BFF) == 65504.0f);
    CHECK(io::half_to_float(0x0001) == std::ldexp(1.0f, -24));
    CHECK(io::half_to_float(0x0400) == std::ldexp(1.0f, -14));
}

TEST_CASE("BF16 to float: the upper half of the float's bits", "[checkpoint]") {
    CHECK(io::bfloat16_to_float(0x3F80) == 1.0f);
    CHECK(io::bfloat16_to_float(0xC049) == -3.140625f);  // π rounded down to 8 significant bits
    CHECK(io::bfloat16_to_float(0x0001) == std::ldexp(1.0f, -133));  // smallest subnormal
    CHECK(std::isinf(io::bfloat16_to_float(0x7F80)));
    CHECK(std::isnan(io::bfloat16_to_float(0x7FC0)));
    for (const float x : {0.5f, -1.75f, 3.0e38f, 1.0e-40f, -0.0f}) {
        std::uint32_t bits = 0;
        std::memcpy(&bits, &x, 4);
        const auto upper = std::uint16_t(bits >> 16);
        if ((bits & 0xFFFF) == 0) CHECK(io::bfloat16_to_float(upper) == x);  // exactly a bfloat16
    }
}

TEST_CASE("F16, BF16, I64 and U8 tensors load as f32 and i32, and an I64 beyond int32 is an error", "[checkpoint]") {
    auto le = [](std::uint64_t v, int n) {
        std::string out;
        for (int i = 0; i < n; ++i) out.push_back(char((v >> (8 * i)) & 0xFF));
        return out;
    };
    // As torch.save_file writes {"h": F16 [1, -2, 65504], "b": BF16 [1, -3.140625], "i": I64 [-7,
    // 2^31 - 1, -2^31], "u": U8 [0, 255]}: widest first, each at an offset its size divides.
    const std::string data = le(std::uint64_t(-7), 8) + le(0x7FFFFFFF, 8) + le(0xFFFFFFFF80000000ull, 8) +
                             le(0x3C00, 2) + le(0xC000, 2) + le(0x7BFF, 2) + le(0x3F80, 2) + le(0xC049, 2) +
                             le(0, 1) + le(255, 1);
    const std::string header = R"({"h":{"dtype":"F16","shape":[3],"data_offsets":[24,30]},)"
                               R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[30,34]},)"
                               R"("i":{"dtype":"I64","shape":[3],"data_offsets":[0,24]},)"
                               R"("u":{"dtype":"U8","shape":[1,2],"data_offsets":[34,36]}})";
    const auto st = parse_exact(make_file(header, data));
    REQUIRE(st.tensors.size() == 4);
    const Tensor& h = st.tensors[0].second;
    const Tensor& b = st.tensors[1].second;
    const Tensor& i = st.tensors[2].second;
    const Tensor& u = st.tensors[3].second;
    CHECK((h.dtype() == f32 && b.dtype() == f32 && i.dtype() == i32 && u.dtype() == i32));
    CHECK(h.shape() == Shape{3});
    CHECK(u.shape() == Shape{1, 2});
    CHECK((h.at({0}) == 1.0 && h.at({1}) == -2.0 && h.at({2}) == 65504.0));
    CHECK((b.at({0}) == 1.0 && b.at({1}) == -3.140625));
    CHECK((i.at({0}) == -7.0 && i.at({1}) == 2147483647.0 && i.at({2}) == -2147483648.0));
    CHECK((u.at({0, 0}) == 0.0 && u.at({0, 1}) == 255.0));

    // One past int32's range either way: the tensor, the element and the value are named.
    const std::string one = R"({"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})";
    CHECK_THROWS_WITH(parse_exact(make_file(one, le(5, 8) + le(0x80000000ull, 8))),
                      Contains("tensor 'ids': I64 element 1 is 2147483648, outside the range of int32"));
    CHECK_THROWS_WITH(parse_exact(make_file(one, le(0xFFFFFFFF7FFFFFFFull, 8) + le(0, 8))),
                      Contains("tensor 'ids': I64 element 0 is -2147483649, outside the range of int32"));
    // The byte count is checked with the file's element size, not qkv's.
    CHECK_THROWS_WITH(parse_exact(make_file(R"({"h":{"dtype":"F16","shape":[3],"data_offsets":[0,12]}})", std::string(12, '\0'))),
                      Contains("tensor 'h': shape (3) of F16 needs 6 bytes, but data_offsets [0, 12] hold 12"));
}

TEST_CASE("safetensors round trip: f32, f64, i32, bool, scalars, empty tensors, metadata", "[checkpoint]") {
    Generator g(3);
    const std::vector<NamedTensor> tensors{
        {"flag", from(std::vector<std::uint8_t>{1, 0, 1}, {3})},  // 3 bytes: laid out last, for alignment
        {"w32", randn({2, 3}, g)},
        {"w64", randn({4}, g, f64)},
        {"ids", from(std::vector<std::int32_t>{-5, 0, 2147483647}, {3})},
        {"scalar", scalar(3.25, f64)},
        {"empty", zeros({0, 4})},
        {"unicodé \"name\"", ones({1})},
    };
    const io::Metadata meta{{"epoch", "3"}, {"note", "quotes \" backslash \\ newline \n tab \t \x01 é"}};
    TempDir dir;
    io::save_safetensors(dir / "t.safetensors", tensors, meta);
    const auto back = io::load_safetensors(dir / "t.safetensors");
    CHECK(back.metadata == meta);
    REQUIRE(back.tensors.size() == tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        CHECK(back.tensors[i].first == tensors[i].first);  // the header keeps the caller's order
        CHECK(same_bits(back.tensors[i].second, tensors[i].second));
    }
    // Data layout: f64 first (offset 0), then f32/i32 (4-byte), the bool last — every offset aligned.
    const std::string bytes = read_bytes(dir / "t.safetensors");
    CHECK(bytes.find(R"("w64":{"dtype":"F64","shape":[4],"data_offsets":[0,32]})") != std::string::npos);
    CHECK(bytes.find(R"("scalar":{"dtype":"F64","shape":[],"data_offsets":[32,40]})") != std::string::npos);
    CHECK(bytes.find(R"("flag":{"dtype":"BOOL","shape":[3],"data_offsets":[80,83]})") != std::string::npos);

    CHECK_THROWS_WITH(io::save_safetensors(dir / "x", {{"a", ones({1})}, {"a", ones({1})}}), Contains("tensor name 'a' appears twice"));
    CHECK_THROWS_WITH(io::save_safetensors(dir / "x", {{"", ones({1})}}), Contains("has an empty name"));
    CHECK_THROWS_WITH(io::save_safetensors(dir / "x", {{"u", Tensor()}}), Contains("tensor 'u' is undefined"));
    CHECK_THROWS_WITH(io::save_safetensors(dir / "x", {}, {{"qkv.crc32", "0"}}), Contains("metadata key 'qkv.crc32' is reserved"));
    CHECK(dir.files() == std::vector<std::string>{"t.safetensors"});
}

// ---- modules and exact resume -------------------------------------------------------------------

TEST_CASE("a module saved and loaded into a fresh instance has identical values and outputs", "[checkpoint]") {
    TempDir dir;
    Mlp a(1), b(2);
    Generator gx(11);
    const Tensor x = randn({5, 4}, gx);
    REQUIRE_FALSE(same_bits(a.forward(x), b.forward(x)));
    io::save_checkpoint(dir / "m.safetensors", a, nullptr, nullptr, {{"model", "mlp"}});
    // The file is plain safetensors with PyTorch-style dotted names.
    std::vector<std::string> names;
    for (const auto& [n, t] : io::load_safetensors(dir / "m.safetensors").tensors) names.push_back(n);
    CHECK(names == std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});

    const io::Metadata meta = io::load_checkpoint(dir / "m.safetensors", b);
    CHECK(meta.at("model") == "mlp");
    const auto pa = a.named_parameters(), pb = b.named_parameters();
    for (std::size_t i = 0; i < pa.size(); ++i) CHECK(same_bits(pa[i].second, pb[i].second));
    CHECK(same_bits(a.forward(x), b.forward(x)));  // the same logits
    CHECK_THROWS_WITH(io::save_checkpoint(dir / "m2", a, nullptr, nullptr, {{"train.x", "1"}}), Contains("'train.x' is reserved"));
}

TEST_CASE("exact resume: N steps, save, load into fresh objects, M steps == N+M steps bit for bit", "[checkpoint]") {
    constexpr int N = 7, M = 8;
    TempDir dir;
    // The uninterrupted run.
    std::vector<double> straight;
    Mlp ref(1);
    {
        optim::AdamW opt(ref.named_parameters());
        io::TrainState ts{0, Generator(7), Tensor()};
        for (int i = 0; i < N + M; ++i) straight.push_back(train_step(ref, opt, ts));
    }
    // The interrupted run: N steps, save, then everything rebuilt from different seeds and settings.
    std::vector<double> resumed;
    {
        Mlp model(1);
        optim::AdamW opt(model.named_parameters());
        io::TrainState ts{0, Generator(7), Tensor()};
        for (int i = 0; i < N; ++i) resumed.push_back(train_step(model, opt, ts));
        io::save_checkpoint(dir / "ckpt.safetensors", model, &opt, &ts);
    }
    {
        Mlp model(999);
        optim::AdamW opt(model.named_parameters(), {.lr = 0.5, .beta1 = 0.5, .weight_decay = 0.3});
        io::TrainState ts{123, Generator(4242), Tensor()};
        io::load_checkpoint(dir / "ckpt.safetensors", model, &opt, &ts);
        CHECK(ts.step == N);
        CHECK(opt.step_count() == N);
        CHECK(opt.options().beta1 == 0.9);
        CHECK(opt.options().weight_decay == 0.01);
        for (int i = 0; i < M; ++i) resumed.push_back(train_step(model, opt, ts));
        const auto p = model.named_parameters(), q = ref.named_parameters();
        for (std::size_t i = 0; i < p.size(); ++i) CHECK(same_bits(p[i].second, q[i].second));
    }
    REQUIRE(resumed.size() == straight.size());
    for (int i = 0; i < N + M; ++i) {
        INFO("step " << i);
        CHECK(resumed[std::size_t(i)] == straight[std::size_t(i)]);  // exact equality, not Approx
    }
    CHECK(straight.back() < straight.front());  // and it did learn something
}

TEST_CASE("load_checkpoint: missing, unexpected, wrong shape, wrong dtype, wrong optimizer", "[checkpoint]") {
    TempDir dir;
    save_trained(dir / "c.safetensors");
    const auto file = io::load_safetensors(dir / "c.safetensors");
    auto variant = [&](auto edit) {  // the same checkpoint with its tensors edited
        auto tensors = file.tensors;
        auto meta = file.metadata;
        edit(tensors, meta);
        io::save_safetensors(dir / "v.safetensors", tensors, meta);
        return dir / "v.safetensors";
    };
    Mlp m(5);
    const Tensor before = m.fc1.weight.clone();
    auto rename = [](std::string old_name, std::string new_name) {
        return [=](auto& ts, auto&) {
            for (auto& [n, t] : ts)
                if (n == old_name) n = new_name;
        };
    };
    CHECK_THROWS_WITH(io::load_checkpoint(variant(rename("fc1.bias", "fc1.b")), m),
                      Contains("missing tensor 'fc1.bias' (the model has it, the file does not)"));
    CHECK_THROWS_WITH(io::load_checkpoint(variant([](auto& ts, auto&) { ts.emplace_back("extra", ones({1})); }), m),
                      Contains("unexpected tensor 'extra'"));
    CHECK_THROWS_WITH(io::load_checkpoint(variant([](auto& ts, auto&) { ts[1].second = zeros({7}); }), m),
                      Contains("tensor 'fc1.bias' has shape (7) in the file, but the model expects (8)"));
    CHECK_THROWS_WITH(io::load_checkpoint(variant([](auto& ts, auto&) { ts[0].second = ts[0].second.to(f64); }), m),
                      Contains("tensor 'fc1.weight' is f64 in the file, but the model expects f32"));
    CHECK(same_bits(m.fc1.weight, before));  // failed loads changed nothing

    // Not strict: missing parameters keep their values, unexpected tensors are ignored.
    io::load_checkpoint(variant([](auto& ts, auto&) {
                            ts.erase(ts.begin());
                            ts.emplace_back("extra", ones({1}));
                        }),
                        m, nullptr, nullptr, /*strict=*/false);
    CHECK(same_bits(m.fc1.weight, before));
    CHECK(same_bits(m.fc1.bias, file.tensors[1].second));

    // Optimizer and training state.
    io::TrainState ts;
    optim::Adam adam(m.named_parameters());
    CHECK_THROWS_WITH(io::load_checkpoint(dir / "c.safetensors", m, &adam), Contains("holds a AdamW optimizer, not Adam"));
    optim::AdamW adamw(m.named_parameters());
    CHECK_THROWS_WITH(io::load_checkpoint(variant([](auto& ts2, auto&) { ts2.back().second = zeros({2}, f64); }), m, &adamw),
                      Contains("state 'fc2.bias.step' has shape (2), expected ()"));
    CHECK_THROWS_WITH(io::load_checkpoint(variant([](auto&, auto& md) { md.erase("optimizer.eps"); }), m, &adamw),
                      Contains("metadata 'optimizer.eps' is missing"));
    CHECK_THROWS_WITH(io::load_checkpoint(variant([](auto&, auto& md) { md["optimizer.lr"] = "fast"; }), m, &adamw),
                      Contains("metadata 'optimizer.lr' is not a valid number: \"fast\""));
    CHECK_THROWS_WITH(io::load_checkpoint(variant([](auto&, auto& md) { md["train.rng"] = "1,2,3"; }), m, &adamw, &ts),
                      Contains("'train.rng' must be four comma-separated integers"));
    CHECK(adamw.step_count() == 0);
    io::save_checkpoint(dir / "weights.safetensors", m);
    CHECK_THROWS_WITH(io::load_checkpoint(dir / "weights.safetensors", m, &adamw), Contains("has no optimizer state"));
    CHECK_THROWS_WITH(io::load_checkpoint(dir / "weights.safetensors", m, nullptr, &ts),
                      Contains("metadata 'train.step' is missing"));
    CHECK_THROWS_WITH(io::load_checkpoint(dir / "nope.safetensors", m), Contains("cannot open"));
    CHECK_THROWS_WITH(io::load_checkpoint(dir.path.string(), m), Contains("is a directory, not a file"));
}

// ---- corrupt files ------------------------------------------------------------------------------

TEST_CASE("read_file: whole files, pipes, the size limit and what is not a file", "[checkpoint]") {
    TempDir dir;
    const std::string path = (dir / "ten.txt");
    io::write_text_file(path, "0123456789", "test");
    CHECK(io::read_file(path, "test") == "0123456789");
    CHECK(io::read_file(path, "test", 10) == "0123456789");  // the limit is inclusive
    CHECK_THROWS_WITH(io::read_file(path, "test", 9), "test: '" + path + "' has 10 bytes, more than the 9 allowed");
    // A character device has no size to check first: the limit is counted while reading.
    CHECK(io::read_file("/dev/null", "test").empty());
    CHECK_THROWS_WITH(io::read_file("/dev/zero", "test", 100000), "test: '/dev/zero' has more than the 100000 bytes allowed");
    CHECK_THROWS_WITH(io::read_file(dir.path.string(), "test"), "test: '" + dir.path.string() + "' is a directory, not a file");
    CHECK_THROWS_WITH(io::read_file(dir / "nope", "test"), "test: cannot open '" + (dir / "nope") + "': No such file or directory");
}

TEST_CASE("a truncated checkpoint throws at every length", "[checkpoint]") {
    TempDir dir;
    save_trained(dir / "c.safetensors");
    const std::string bytes = read_bytes(dir / "c.safetensors");
    REQUIRE(bytes.size() > 1000);
    int errors = 0;
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        try {
            parse_exact(bytes.substr(0, n));
        } catch (const Error& e) {
            ++errors;
            const std::string msg = e.what();
            if (n < 8) CHECK_THAT(msg, Contains("too short for the 8-byte header length"));
            else if (n < 8 + 1024) CHECK_THAT(msg, Contains("exceeds the") || Contains("go past the end"));
        }
    }
    CHECK(errors == int(bytes.size()));
    // The same through files and load_checkpoint, at a few lengths.
    for (std::size_t n : {std::size_t(0), std::size_t(5), std::size_t(100), bytes.size() / 2, bytes.size() - 1}) {
        write_bytes(dir / "t.safetensors", bytes.substr(0, n));
        Mlp m(1);
        CHECK_THROWS_AS(io::load_checkpoint(dir / "t.safetensors", m), Error);
    }
    // The full file is fine.
    CHECK(parse_exact(bytes).tensors.size() == 4 + 4 * 3);
}

TEST_CASE("every single-bit flip anywhere in a qkv checkpoint is detected", "[checkpoint]") {
    TempDir dir;
    save_trained(dir / "c.safetensors");
    const std::string bytes = read_bytes(dir / "c.safetensors");
    std::size_t undetected = 0;
    for (std::size_t i = 0; i < bytes.size(); ++i)
        for (int bit = 0; bit < 8; ++bit) {
            std::string bad = bytes;
            bad[i] = char(bad[i] ^ (1 << bit));
            try {
                parse_exact(bad);
                ++undetected;
                UNSCOPED_INFO("undetected flip: byte " << i << " bit " << bit);
            } catch (const Error& e) {
                // Every message names the function and the source.
                if (std::string(e.what()).rfind("load_safetensors: 'test': ", 0) != 0) FAIL_CHECK(e.what());
            }
        }
    CHECK(undetected == 0);
    // A flip in the data section is caught by the CRC (the format itself cannot notice it).
    std::string bad = bytes;
    bad[bytes.size() - 3] = char(bad[bytes.size() - 3] ^ 0x10);
    CHECK_THROWS_WITH(parse_exact(bad), Contains("CRC-32 mismatch") && Contains("the file is corrupt"));
}

TEST_CASE("malformed headers: each problem is named", "[checkpoint]") {
    const std::string d4(4, '\0');
    auto bad = [&](const std::string& header, const std::string& data = std::string(4, '\0')) {
        return [=] { parse_exact(make_file(header, data)); };
    };
    const std::string ok = R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
    CHECK_NOTHROW(bad("{" + ok + "}")());

    // Header length.
    std::string huge(8, '\xff');
    CHECK_THROWS_WITH(parse_exact(huge + "{}"), Contains("header length 18446744073709551615 exceeds the 2 bytes after it"));
    CHECK_THROWS_WITH(parse_exact(std::string("\x09\0\0\0\0\0\0\0{}", 10)), Contains("header length 9 exceeds the 2 bytes"));
    // JSON syntax.
    CHECK_THROWS_WITH(bad("{" + ok)(), Contains("malformed JSON header: unexpected end of header"));
    CHECK_THROWS_WITH(bad("{" + ok + ",}")(), Contains("malformed JSON header: expected a string key"));
    CHECK_THROWS_WITH(bad("{" + ok + "}x")(), Contains("unexpected character after the end"));
    CHECK_THROWS_WITH(bad("[1]")(), Contains("the header must be a JSON object, got an array"));
    CHECK_THROWS_WITH(bad("{" + ok + "," + ok + "}")(), Contains("duplicate key \"a\""));
    CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})")(), Contains("only non-negative integers"));
    CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})")(), Contains("expected an object, array, string"));
    CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}})")(), Contains("leading zero"));
    CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}})")(),
                      Contains("does not fit in 64 bits"));
    CHECK_THROWS_WITH(bad("{\"\xff\":1}")(), Contains("invalid UTF-8"));
    CHECK_THROWS_WITH(bad("{\"a\x01\":1}")(), Contains("control character in a string"));
    CHECK_THROWS_WITH(bad(R"({"\ud800":1})")(), Contains("high surrogate without a low surrogate"));
    CHECK_THROWS_WITH(bad(R"({"\q":1})")(), Contains("unknown escape"));
    CHECK_THROWS_WITH(bad(R"({"a":true})")(), Contains("expected an object, array, string or non-negative integer"));
    CHECK_THROWS_WITH(bad(std::string(40, '[') + std::string(40, ']'))(), Contains("nested too deeply"));
    // Fields.
    CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F8_E5M2","shape":[4],"data_offsets":[0,4]}})")(),
                      Contains("tensor 'a': unsupported dtype 'F8_E5M2' (qkv reads F32, F64, F16, BF16, I64, I32, U8, BOOL)"));
    CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F32","shape":[1]}})")(), Contains("tensor 'a': missing \"data_offsets\""));
    CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})")(),
                      Contains("tensor 'a': unexpected field \"x\""));
    CHECK_THROWS_WITH(bad(R"({"a":{"dtype":3,"shape":[1],"data_offsets":[0,4]}})")(),
                      Contains("tensor 'a': \"dtype\" must be a string, got an integer"));
    CHECK_THROWS_WITH(bad(R"({"a":[]})")(), Contains("tensor 'a' must be an object, got an array"));
    CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})")(),
                      Contains("data_offsets must be two integers"));
    CHECK_THROWS_WITH(bad(R"({"__metadata__":{"k":1}})", "")(), Contains("metadata 'k' must be a string, got an integer"));
    CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}})", std::string("\x01\x00\x02\x01", 4))(),
                      Contains("tensor 'a': BOOL element 2 is 2, not 0 or 1"));
    // Shapes and offsets against the data.
    CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})")(),
                      Contains("tensor 'a': shape (2) of F32 needs 8 bytes, but data_offsets [0, 4] hold 4"));
    CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})")(),
                      Contains("has more than 2^60 elements"));
    CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})")(), Contains("end before they begin"));
    CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})")(),
                      Contains("tensor 'a': data_offsets [0, 8] go past the end of the 4-byte data section (truncated file?)"));
    CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
                          std::string(8, '\0'))(),
                      Contains("tensors 'a' and 'b' overlap (data_offsets [0, 4] and [2, 6])"));
    CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, '\0'))(),
                      Contains("data bytes [0, 4) before tensor 'a' belong to no tensor"));
    CHECK_THROWS_WITH(bad("{" + ok + "}", std::string(12, '\0'))(), Contains("data section is 12 bytes but the tensors cover only 4"));
    // qkv's checksum entries must come together.
    CHECK_THROWS_WITH(bad(R"({"__metadata__":{"qkv.format":"safetensors/1"}})", "")(), Contains("has 'qkv.format' but no 'qkv.crc32'"));
    CHECK_THROWS_WITH(bad(R"({"__metadata__":{"qkv.crc32":"0","qkv.format":"safetensors/1"}})", "")(),
                      Contains("'qkv.crc32' must be 8 lowercase hex digits"));
}

// ---- atomic saving ------------------------------------------------------------------------------

TEST_CASE("a failed save leaves the previous file intact and no temporary file behind", "[checkpoint]") {
    TempDir dir;
    const std::string path = dir / "model.safetensors";
    io::save_safetensors(path, {{"w", from({1.0, 2.0}, {2})}});
    const std::string old = read_bytes(path);

    // The disk "fills up" in the middle of writing the new version.
    io::detail::set_write_fault(100);
    CHECK_THROWS_WITH(io::save_safetensors(path, {{"w", from({3.0, 4.0, 5.0}, {3})}}), Contains("simulated write failure"));
    io::detail::set_write_fault(-1);
    CHECK(read_bytes(path) == old);
    CHECK(dir.files() == std::vector<std::string>{"model.safetensors"});

    // The same for a whole checkpoint, failing right at the start.
    Mlp m(1);
    io::save_checkpoint(path, m);
    const std::string old2 = read_bytes(path);
    io::detail::set_write_fault(0);
    CHECK_THROWS_AS(io::save_checkpoint(path, Mlp(2)), Error);
    io::detail::set_write_fault(-1);
    CHECK(read_bytes(path) == old2);
    CHECK(dir.files() == std::vector<std::string>{"model.safetensors"});

    // A directory that does not exist: nothing is created.
    CHECK_THROWS_WITH(io::save_safetensors(dir / "no/such/dir/x.safetensors", {{"w", ones({1})}}), Contains("cannot create"));
    // The target is a directory: refused before a temporary file is made.
    fs::create_directory(dir.path / "adir");
    CHECK_THROWS_WITH(io::save_safetensors(dir / "adir", {{"w", ones({1})}}), Contains("is not a regular file"));
    CHECK(dir.files() == std::vector<std::string>{"adir", "model.safetensors"});
    CHECK(fs::is_empty(dir.path / "adir"));
}

// ---- loading by name (io/state_dict.hpp) -----------------------------------------------------------

namespace {

// Two blocks, so that the renaming rules meet more than one block index.
nn::GPTConfig small_gpt(std::uint64_t seed) {
    return {.vocab = 11, .block_size = 8, .dim = 16, .heads = 2, .layers = 2, .seed = seed};
}

// The model's parameters under the file names a map's reverse gives (as PyTorch would save them).
io::SafeTensors as_file(const nn::Module& m, const io::NameMap& to_file) {
    io::SafeTensors f;
    for (const auto& [name, p] : m.named_parameters()) f.tensors.emplace_back(io::map_name(to_file, name), p.clone());
    return f;
}

bool same_parameters(const nn::Module& a, const nn::Module& b) {
    const auto pa = a.named_parameters(), pb = b.named_parameters();
    if (pa.size() != pb.size()) return false;
    for (std::size_t i = 0; i < pa.size(); ++i)
        if (pa[i].first != pb[i].first || !same_bits(pa[i].second, pb[i].second)) return false;
    return true;
}

}  // namespace

TEST_CASE("name rules: '*' matches within one dotted segment, the first matching rule applies", "[checkpoint]") {
    const io::NameMap m = io::pytorch_gpt_names();
    CHECK(io::map_name(m, "tok.weight") == "tok_emb.weight");
    CHECK(io::map_name(m, "blocks.12.attn.qkv.bias") == "blocks.12.attn.qkv_proj.bias");
    CHECK(io::map_name(m, "blocks.0.attn.proj.weight") == "blocks.0.attn.out_proj.weight");
    CHECK(io::map_name(m, "blocks.3.fc2.weight") == "blocks.3.mlp.fc2.weight");
    CHECK(io::map_name(m, "head.weight") == "lm_head.weight");
    CHECK(io::map_name(m, "ln_f.bias") == "ln_f.bias");                    // no rule: unchanged
    CHECK(io::map_name(m, "blocks.0.1.fc1.weight") == "blocks.0.1.fc1.weight");  // '*' spans no '.'
    CHECK(io::map_name(m, "blocks..fc1.weight") == "blocks..fc1.weight");    // '*' is never empty
    const io::NameMap user = {{"enc.*_w", "encoder.*.weight"}, {"enc.*", "first.*"}, {"enc.*", "second.*"}};
    CHECK(io::map_name(user, "enc.l0_w") == "encoder.l0.weight");
    CHECK(io::map_name(user, "enc.l0") == "first.l0");
    CHECK(io::map_name(io::reversed(m), "blocks.1.mlp.fc1.bias") == "blocks.1.fc1.bias");
    CHECK_THROWS_WITH(io::map_name({{"a.*", "b"}}, "a.x"), Contains("rule 'a.*' -> 'b' has 1 '*' on the left but 0 on the right"));
}

TEST_CASE("load_state_dict: PyTorch's names through the built-in map load every parameter", "[checkpoint]") {
    nn::GPT a(small_gpt(1)), b(small_gpt(2));
    REQUIRE_FALSE(same_parameters(a, b));
    const io::SafeTensors file = as_file(a, io::reversed(io::pytorch_gpt_names()));
    std::set<std::string> names;
    for (const auto& [n, t] : file.tensors) names.insert(n);
    // The names bench_train_torch.py's model has (its state_dict()).
    for (const char* n : {"tok.weight", "pos.weight", "blocks.0.ln1.weight", "blocks.0.attn.qkv.weight",
                          "blocks.0.attn.proj.bias", "blocks.1.fc1.weight", "blocks.1.fc2.bias", "ln_f.weight", "head.weight"})
        CHECK(names.count(n) == 1);
    const io::LoadReport r = io::load_state_dict(file, "torch.safetensors", b, io::pytorch_gpt_names());
    CHECK(r.loaded.size() == a.named_parameters().size());
    CHECK(r.missing.empty());
    CHECK(r.unexpected.empty());
    CHECK(same_parameters(a, b));
}

TEST_CASE("load_state_dict: non-strict loading reports missing and unexpected names, strict loading refuses them", "[checkpoint]") {
    nn::GPT a(small_gpt(1));
    // PyTorch's names without the map: only the layer norms' names agree (the trap of issue 15,
    // where 14 of 41 tensors loaded and nothing was said about the other 27).
    {
        nn::GPT b(small_gpt(2));
        const io::SafeTensors file = as_file(a, io::reversed(io::pytorch_gpt_names()));
        const io::LoadReport r = io::load_state_dict(file, "f", b, {}, false);
        CHECK(r.loaded.size() == 10);  // 2 blocks x 2 norms x (weight, bias) + ln_f's 2
        CHECK(r.missing.size() == a.named_parameters().size() - 10);
        CHECK(r.unexpected.size() == r.missing.size());
        CHECK(std::find(r.missing.begin(), r.missing.end(), "tok_emb.weight") != r.missing.end());
        CHECK(std::find(r.unexpected.begin(), r.unexpected.end(), "tok.weight") != r.unexpected.end());
        CHECK_THROWS_WITH(io::load_state_dict(file, "f", b), Contains("load_state_dict: 'f': missing tensor 'tok_emb.weight'") &&
                                                                 Contains("and 18 more"));
    }
    // One tensor dropped, one added.
    io::SafeTensors file = as_file(a, {});
    const std::string dropped = file.tensors[3].first;
    file.tensors.erase(file.tensors.begin() + 3);
    file.tensors.emplace_back("extra.scale", ones({2}));
    nn::GPT b(small_gpt(2));
    const Tensor before = b.named_parameters()[3].second.clone();
    CHECK_THROWS_WITH(io::load_state_dict(file, "f", b), Contains("missing tensor '" + dropped + "'"));
    file.tensors.emplace_back(dropped, a.named_parameters()[3].second.clone());
    CHECK_THROWS_WITH(io::load_state_dict(file, "f", b), Contains("unexpected tensor 'extra.scale'"));
    file.tensors.pop_back();
    REQUIRE_FALSE(same_parameters(a, b));  // the refused loads changed nothing
    const io::LoadReport r = io::load_state_dict(file, "f", b, {}, false);
    CHECK(r.missing == std::vector<std::string>{dropped});
    CHECK(r.unexpected == std::vector<std::string>{"extra.scale"});
    CHECK(r.loaded.size() == a.named_parameters().size() - 1);
    CHECK(same_bits(b.named_parameters()[3].second, before));  // the missing one kept its value
    CHECK(same_bits(b.named_parameters()[0].second, a.named_parameters()[0].second));
}

TEST_CASE("load_state_dict: nothing matching, a wrong shape or dtype, two names for one parameter: errors, nothing changed",
          "[checkpoint]") {
    nn::GPT a(small_gpt(1)), b(small_gpt(2));
    const auto pb = b.named_parameters();
    std::vector<Tensor> before;
    for (const auto& [n, p] : pb) before.push_back(p.clone());
    auto unchanged = [&] {
        for (std::size_t i = 0; i < pb.size(); ++i)
            if (!same_bits(pb[i].second, before[i])) return false;
        return true;
    };
    io::SafeTensors unrelated;
    unrelated.tensors.emplace_back("conv.weight", zeros({3, 3}));
    CHECK_THROWS_WITH(io::load_state_dict(unrelated, "u", b, {}, false),
                      Contains("none of the file's 1 tensors matches a parameter of the model") && Contains("'conv.weight'"));

    io::SafeTensors file = as_file(a, io::reversed(io::pytorch_gpt_names()));
    for (auto& [n, t] : file.tensors)
        if (n == "blocks.1.fc1.weight") t = zeros({3, 16});
    CHECK_THROWS_WITH(io::load_state_dict(file, "g", b, io::pytorch_gpt_names(), false),
                      Contains("tensor 'blocks.1.fc1.weight' (the model's 'blocks.1.mlp.fc1.weight') has shape (3,16) in "
                               "the file, but the model expects (64,16)"));
    file = as_file(a, io::reversed(io::pytorch_gpt_names()));
    for (auto& [n, t] : file.tensors)
        if (n == "ln_f.bias") t = zeros({16}, f64);
    CHECK_THROWS_WITH(io::load_state_dict(file, "g", b, io::pytorch_gpt_names()),
                      Contains("tensor 'ln_f.bias' is f64 in the file, but the model expects f32"));
    file = as_file(a, {});
    file.tensors.emplace_back("head.weight", a.named_parameters().back().second.clone());
    CHECK_THROWS_WITH(io::load_state_dict(file, "g", b, io::pytorch_gpt_names()),
                      Contains("tensors 'lm_head.weight' and 'head.weight' both map to 'lm_head.weight'"));
    CHECK(unchanged());
}

TEST_CASE("export_weights: a checkpoint's weights under PyTorch's names, without the training state, load back",
          "[checkpoint]") {
    TempDir dir;
    nn::GPT a(small_gpt(1)), b(small_gpt(2));
    optim::AdamW opt(a.named_parameters());
    io::TrainState state;
    state.step = 7;
    io::save_checkpoint(dir / "run.safetensors", a, &opt, &state, {{"run.dim", "16"}});
    const auto names = io::export_weights(dir / "run.safetensors", dir / "torch.safetensors",
                                          io::reversed(io::pytorch_gpt_names()));
    CHECK(names.size() == a.named_parameters().size());
    const io::SafeTensors out = io::load_safetensors(dir / "torch.safetensors");
    CHECK(out.tensors.front().first == "tok.weight");
    CHECK(out.tensors.back().first == "head.weight");
    for (const auto& [n, t] : out.tensors) CHECK(n.rfind("optimizer.", 0) == std::string::npos);
    CHECK(out.metadata.at("run.dim") == "16");
    CHECK(out.metadata.at("format") == "pt");
    CHECK(out.metadata.count("train.step") == 0);
    const io::LoadReport r = io::load_state_dict(out, "torch", b, io::pytorch_gpt_names());
    CHECK(r.loaded.size() == names.size());
    CHECK(same_parameters(a, b));
    // Two weights onto one name: refused, and nothing written.
    CHECK_THROWS_WITH(io::export_weights(dir / "run.safetensors", dir / "bad.safetensors", {{"blocks.*.ln1.*", "ln.*.*"}, {"blocks.*.ln2.*", "ln.*.*"}}),
                      Contains("'blocks.0.ln1.weight' and 'blocks.0.ln2.weight' would both be written as 'ln.0.weight'"));
    CHECK_FALSE(fs::exists(dir / "bad.safetensors"));
}
