// Sizes that come from outside — shapes and counts from callers, files and flags — are checked
// before anything is computed from them: a product that would overflow is a qkv::Error naming the
// op and the shape (never a wrapped-around, too-small allocation that later writes run past), and
// memory that cannot be had is a qkv::OutOfMemory saying how much was asked for.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <locale>

#include "qkv/io/safetensors.hpp"
#include "qkv/qkv.hpp"
#include "qkv/train/train.hpp"
#include "support.hpp"

using namespace qkv;
using Catch::Contains;

namespace {
constexpr std::int64_t kHuge = std::int64_t(1) << 62;
constexpr std::int64_t kMax64 = std::numeric_limits<std::int64_t>::max();
}  // namespace

TEST_CASE("a shape whose element count overflows is an error, not a wrapped-around allocation", "[limits]") {
    // 2^62 · 4 wraps to 0 in 64 bits: the old code allocated nothing and set() wrote past it.
    CHECK_THROWS_WITH(zeros({kHuge, 4}), Contains("empty: shape (4611686018427387904,4) has more than 2^60 elements"));
    CHECK_THROWS_AS(zeros({kHuge, 4}), Error);
    CHECK_THROWS_WITH(ones({1 << 30, 1 << 30, 1 << 30}), Contains("more than 2^60 elements"));
    // A zero makes the product 0, but the leading sizes alone would overflow any op's outer × inner.
    CHECK_THROWS_WITH(empty({kHuge, 2, 0}), Contains("more than 2^60 elements"));
    CHECK_THROWS_WITH(from(std::vector<float>{}, {kHuge, 4, 0}), Contains("from: shape"));
    CHECK_THROWS_WITH(empty({2, -3}), Contains("negative"));
    // The bound itself: the largest shapes are accepted (without memory, thanks to a 0).
    CHECK(empty({kMaxNumel, 0}).numel() == 0);
    CHECK(empty({std::int64_t(1) << 30, std::int64_t(1) << 30, 0}).numel() == 0);
    CHECK(checked_numel({kMaxNumel}) == kMaxNumel);
    CHECK(checked_numel({kMaxNumel, 2}) == -1);
    CHECK(checked_numel({kMax64, kMax64}) == -1);
    CHECK(checked_numel({3, -1}) == -1);
    CHECK(checked_numel({}) == 1);
    CHECK(checked_numel({5, 0, 7}) == 0);
}

TEST_CASE("ops check the sizes they are given without overflowing", "[limits]") {
    const Tensor x = arange(12).requires_grad_();
    SECTION("reshape") {
        CHECK_THROWS_WITH(reshape(x, {std::int64_t(1) << 40, std::int64_t(1) << 40, -1}),
                          Contains("reshape: shape (1099511627776,1099511627776,1) has more than 2^60"));
        CHECK_THROWS_WITH(reshape(x, {kHuge, 4}), Contains("reshape"));
        CHECK(reshape(x, {3, -1}).shape() == Shape{3, 4});
    }
    SECTION("narrow: start + length would overflow") {
        CHECK_THROWS_WITH(narrow(x, 0, 1, kMax64), Contains("narrow: start 1 and length 9223372036854775807 out of range"));
        CHECK_THROWS_WITH(narrow(x, 0, kMax64, 1), Contains("out of range"));
        CHECK(narrow(x, 0, 10, 2).to_vector<float>() == std::vector<float>{10, 11});
    }
    SECTION("slice: a huge step takes one element") {
        CHECK(slice(x, 0, 3, 12, kMax64).to_vector<float>() == std::vector<float>{3});
        CHECK(slice(x, 0, 0, 12, 5).to_vector<float>() == std::vector<float>{0, 5, 10});
    }
    SECTION("split: sizes whose sum would overflow") {
        CHECK_THROWS_WITH(split(x, std::vector<std::int64_t>{kMax64, kMax64}, 0), Contains("split: sizes"));
        CHECK(split(x, std::vector<std::int64_t>{5, 7}, 0).size() == 2);
    }
    SECTION("concat: sizes that add up to more than a tensor can hold") {
        const Tensor e = empty({kMaxNumel, 0});
        CHECK_THROWS_WITH(concat({e, e}, 0), Contains("concat"));
    }
    SECTION("tril_mask: a huge diagonal") {
        CHECK(tril_mask(2, 3, kMax64).to_vector<std::int32_t>() == std::vector<std::int32_t>(6, 1));
        CHECK(tril_mask(2, 3, -kMax64).to_vector<std::int32_t>() == std::vector<std::int32_t>(6, 0));
    }
    SECTION("broadcasting to a shape no tensor can hold") {
        const Tensor a = zeros({std::int64_t(1) << 40, 1, 0});
        const Tensor b = zeros({1, std::int64_t(1) << 40, 0});
        CHECK_THROWS_WITH(a + b, Contains("add: shape (1099511627776,1099511627776,0) has more than 2^60"));
    }
}

TEST_CASE("a safetensors shape whose element count overflows is an error naming the tensor", "[limits][checkpoint]") {
    // BOOL [2^62, 2, 0] needs 0 bytes, so the byte-range check passes: only the shape check stops it.
    const std::string header = R"({"mask":{"dtype":"BOOL","shape":[4611686018427387904,2,0],"data_offsets":[0,0]}})";
    CHECK_THROWS_WITH(io::parse_safetensors(test::make_safetensors(header, ""), "crafted"),
                      Contains("'crafted': tensor 'mask': shape (4611686018427387904,2,0) has more than 2^60 elements"));
    const std::string f32 = R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})";
    CHECK_THROWS_WITH(io::parse_safetensors(test::make_safetensors(f32, ""), "crafted"), Contains("tensor 'w': shape"));
    // The same shapes at a sane size load.
    const std::string ok = R"({"mask":{"dtype":"BOOL","shape":[3,2,0],"data_offsets":[0,0]}})";
    CHECK(io::parse_safetensors(test::make_safetensors(ok, ""), "ok").tensors.at(0).second.shape() == Shape{3, 2, 0});
}

TEST_CASE("memory that cannot be allocated is a qkv::OutOfMemory saying how much", "[limits]") {
    // 2^59 f32 elements are 2 EiB: a valid shape that no machine has memory for. (Under ASan this
    // needs allocator_may_return_null=1, which the asan test preset sets, and qkv's allocator asks
    // with the nothrow `new`: ASan aborts on a failed throwing `new` whatever that option says.)
    const Shape shape{std::int64_t(1) << 59};
    CHECK_THROWS_AS(zeros(shape), OutOfMemory);
    CHECK_THROWS_WITH(zeros(shape), Contains("empty: out of memory: cannot allocate 2 EiB for a tensor of shape "
                                             "(576460752303423488) (f32)"));
    try {
        (void)empty(shape, f64);
    } catch (const OutOfMemory& e) {
        CHECK(e.bytes() == (std::uint64_t(1) << 62));
    }
    CHECK(format_bytes(512) == "512 B");
    CHECK(format_bytes(1536) == "1.5 KiB");
    CHECK(format_bytes(61.3 * 1024 * 1024 * 1024) == "61.3 GiB");
}

TEST_CASE("parse_double_prefix reads a number the same way on every toolchain and in any locale", "[limits]") {
    double v = -1;
    CHECK(parse_double_prefix("0.5", v) == 3);
    CHECK(v == 0.5);
    CHECK(parse_double_prefix("16G", v) == 2);  // a number, then a unit
    CHECK(v == 16);
    CHECK(parse_double_prefix("1e-3x", v) == 4);
    CHECK(v == 1e-3);
    CHECK(parse_double_prefix("-.25e+1", v) == 7);
    CHECK(v == -2.5);
    CHECK(parse_double_prefix("2e", v) == 1);  // an exponent needs digits
    CHECK(v == 2);
    // fmt's shortest form reads back to the same bits
    const double third = 1.0 / 3;
    CHECK(parse_double_prefix(fmt::format("{}", third), v) > 0);
    CHECK(v == third);
    v = 7;
    CHECK(parse_double_prefix("", v) == 0);
    CHECK(parse_double_prefix(" 1", v) == 0);  // no leading spaces
    CHECK(parse_double_prefix("G16", v) == 0);
    CHECK(parse_double_prefix("-.", v) == 0);
    CHECK(parse_double_prefix("nan", v) == 0);
    CHECK(v == 7);  // unchanged when there is no number
    // A program whose global locale writes a decimal comma: "0.5" still reads as one half.
    struct CommaPunct : std::numpunct<char> {
        char do_decimal_point() const override { return ','; }
    };
    const std::locale before = std::locale::global(std::locale(std::locale::classic(), new CommaPunct));
    const std::size_t used = parse_double_prefix("0.5", v);
    std::locale::global(before);
    CHECK(used == 3);
    CHECK(v == 0.5);
}

TEST_CASE("reading a safetensors header grows as n log n with its entries, not n squared", "[limits][checkpoint]") {
    // A guard on complexity, not a speed target: finding duplicate names by scanning every earlier
    // key was O(n²) (4.8 s for 40 000 entries in Release; the 100 MB header limit allowed hours);
    // an ordered set makes it O(n log n) (about 0.08 s). The test compares the machine with itself:
    // sixteen times the entries must take well under 256 times as long, quadratic growth. n log n
    // alone would be about 21×, but caches add to it: 2 500 entries' tree fits in the L2 cache,
    // 40 000 entries' does not, and on the 2-core EPYC VM (Zen 5, 2026-12-06) the ratio measured 49×
    // to 54× on a quiet machine. The bound, 113×, is the geometric middle of 50× and 256×, a factor
    // 2.26 from each. (History: sizes 10 000 and 40 000 with a bound of 9× failed with nothing
    // wrong, the caches taking the ratio to 7.8×–9.5×; sizes 5 000 and 40 000 with a bound of 40×,
    // the middle of 25× and 64× — a factor 1.6 from each — failed once in CI at 41.6×, while other
    // tests ran next to it. Sixteen times apart, the two growths stay far apart whatever the caches
    // and the neighbours do.) A ratio holds on a slow machine, under ASan or under qemu alike; the
    // fastest of three runs of each size keeps a scheduler hiccup out of it.
    auto header_of = [](int entries) {
        std::string header = "{";
        for (int i = 0; i < entries; ++i)
            header += fmt::format("{}\"tensor.{:06d}\":{{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}",
                                  i ? "," : "", i);
        return header + "}";
    };
    auto fastest_parse = [](const std::string& file, std::size_t entries) {
        double best = 1e300;
        for (int run = 0; run < 3; ++run) {
            const auto t0 = std::chrono::steady_clock::now();
            const io::SafeTensors st = io::parse_safetensors(file, "big");
            best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            CHECK(st.tensors.size() == entries);
        }
        return best;
    };
    constexpr int kSmall = 2500, kLarge = 40000;
    const std::string header = header_of(kLarge);
    const double small = fastest_parse(test::make_safetensors(header_of(kSmall), ""), kSmall);
    const double large = fastest_parse(test::make_safetensors(header, ""), kLarge);
    INFO("2 500 entries: " << small << " s, 40 000 entries: " << large << " s, ratio " << large / small);
    CHECK(large / small < 113.0);
    // A duplicate is still found, wherever it is.
    std::string dup = header;
    dup.insert(dup.size() - 1, R"(,"tensor.000123":{"dtype":"F32","shape":[0],"data_offsets":[0,0]})");
    CHECK_THROWS_WITH(io::parse_safetensors(test::make_safetensors(dup, ""), "dup"),
                      Contains("duplicate key \"tensor.000123\""));
}

TEST_CASE("GPT::parameter_count is the number of parameters a GPT has, without building it", "[limits][memory]") {
    for (const bool tied : {false, true})
        for (const std::int64_t hidden : {0, 24}) {
            nn::GPTConfig c;
            c.vocab = 13;
            c.block_size = 9;
            c.dim = 16;
            c.heads = 4;
            c.layers = 3;
            c.hidden = hidden;
            c.tie_weights = tied;
            CHECK(nn::GPT::parameter_count(c) == double(nn::GPT(c).num_parameters()));
        }
    nn::GPTConfig bad;
    bad.heads = 3;
    CHECK_THROWS_WITH(nn::GPT::parameter_count(bad), Contains("heads (3) must divide dim (64)"));
}

namespace {
// Sets an environment variable for the scope of a test (ctest runs each test case in a process of its own).
struct ScopedEnv {
    std::string name;
    ScopedEnv(const char* n, const char* value) : name(n) { ::setenv(n, value, 1); }
    ~ScopedEnv() { ::unsetenv(name.c_str()); }
};
}  // namespace

TEST_CASE("a model too large for the memory is refused before anything is allocated, saying what it needs", "[limits][memory]") {
    // QKV_MEMORY_LIMIT holds qkv to 16 GiB whatever this machine has, so the test means the same
    // everywhere. Without the check, the model's 48 GiB of weights would be allocated (overcommit
    // says yes) and the kernel would kill the process part-way — or std::bad_alloc, with no size.
    const ScopedEnv limit("QKV_MEMORY_LIMIT", "16G");
    TaskTrainConfig c;
    c.dim = 4096;
    c.layers = 64;
    try {
        TaskTrainer t(c);
        FAIL("a 222 GiB model was built under a 16 GiB limit");
    } catch (const OutOfMemory& e) {
        const std::string m = e.what();
        CHECK_THAT(m, Contains("train: this model needs about 222 GiB of memory to train (parameters 48 GiB, "
                               "gradients 48 GiB, AdamW state 96 GiB, activations ~"));
        CHECK_THAT(m, Contains("but only 16 GiB is available (QKV_MEMORY_LIMIT=16G): make it smaller"));
        CHECK(e.bytes() > (std::uint64_t(200) << 30));
    }
    // The estimate itself: exact for what is stored per parameter.
    const TaskTrainConfig small;
    const MemoryEstimate m = TaskTrainer(small).memory_estimate();
    CHECK(m.parameters == 103744.0 * 4);
    CHECK(m.gradients == m.parameters);
    CHECK(m.optimizer == 2 * m.parameters);
    CHECK(m.activations > 0);
}

TEST_CASE("QKV_MEMORY_LIMIT caps the memory qkv plans for, and a malformed value is an error", "[limits][memory]") {
    {
        const ScopedEnv limit("QKV_MEMORY_LIMIT", "512M");
        const auto have = available_memory();
        REQUIRE(have);
        CHECK(have->bytes == 512.0 * 1024 * 1024);
        CHECK(have->source == "QKV_MEMORY_LIMIT=512M");
    }
    {
        const ScopedEnv limit("QKV_MEMORY_LIMIT", "lots");
        CHECK_THROWS_WITH(available_memory(), Contains("QKV_MEMORY_LIMIT: expected a size in bytes"));
    }
}
