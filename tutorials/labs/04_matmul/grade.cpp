/// \file
/// \brief Grader of lab 4: matmul_naive and matmul_fast against a float64 reference
/// (qkv::kernels::gemm_reference), element by element, each within the float32 rounding bound.
#include <cmath>
#include <limits>

#include <catch2/catch.hpp>

#include "04_matmul/matmul.hpp"
#include "support/grader.hpp"

using namespace lab::grading;
using qkv::Tensor;

namespace {

using Fn = void (*)(bool, bool, std::int64_t, std::int64_t, std::int64_t, float, const float*, std::int64_t, const float*,
                    std::int64_t, float, float*, std::int64_t);

struct Problem {
    bool ta = false, tb = false;
    std::int64_t M = 1, N = 1, K = 1;
    float alpha = 1, beta = 0;
    std::int64_t pad = 0;  // extra elements at the end of every stored row of A, B and C (NaN)
};

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// A matrix stored as `rows` rows of `cols` numbers with row stride cols + pad; the padding is NaN,
// so reading it shows up in the result, and writing it is caught afterwards.
struct Stored {
    std::int64_t rows, cols, ld;
    std::vector<float> v;
    Stored(std::int64_t r, std::int64_t c, std::int64_t pad, qkv::Generator& gen, bool nan_values = false)
        : rows(r), cols(c), ld(c + pad), v(std::size_t(std::max<std::int64_t>(r * (c + pad), 1)), kNaN) {
        const std::vector<float> x = qkv::randn({r, c}, gen).to_vector<float>();
        for (std::int64_t i = 0; i < r; ++i)
            for (std::int64_t j = 0; j < c; ++j) v[std::size_t(i * ld + j)] = nan_values ? kNaN : x[std::size_t(i * c + j)];
    }
    // The rows × cols elements (padding dropped) as f64, optionally absolute values.
    std::vector<double> dense(bool absolute = false) const {
        std::vector<double> d(std::size_t(rows * cols));
        for (std::int64_t i = 0; i < rows; ++i)
            for (std::int64_t j = 0; j < cols; ++j) {
                const double x = v[std::size_t(i * ld + j)];
                d[std::size_t(i * cols + j)] = absolute ? std::abs(x) : x;
            }
        return d;
    }
    Tensor tensor() const { return qkv::from(dense(), {rows, cols}); }
    bool padding_intact() const {
        for (std::int64_t i = 0; i < rows; ++i)
            for (std::int64_t j = cols; j < ld; ++j)
                if (!std::isnan(v[std::size_t(i * ld + j)])) return false;
        return true;
    }
};

struct Operands {
    Stored A, B, C;
    explicit Operands(const Problem& p, qkv::Generator gen)
        : A(p.ta ? p.K : p.M, p.ta ? p.M : p.K, p.pad, gen), B(p.tb ? p.N : p.K, p.tb ? p.K : p.N, p.pad, gen),
          C(p.M, p.N, p.pad, gen, /*nan_values=*/p.beta == 0) {}  // with β = 0, C must not be read
};

// α·op(A)·op(B) + β·C in float64 by qkv's reference loop (alpha, beta as given).
Tensor reference(const Problem& p, const Operands& o, double alpha, double beta, bool absolute = false) {
    const std::vector<double> a = o.A.dense(absolute), b = o.B.dense(absolute);
    std::vector<double> c = o.C.dense(absolute);
    qkv::kernels::gemm_reference(p.ta, p.tb, p.M, p.N, p.K, alpha, a.data(), o.A.cols, b.data(), o.B.cols, beta, c.data(),
                                 p.N);
    return qkv::from(c, {p.M, p.N});
}

// How far a correct float32 result can be from the exact one, element by element: a sum of K
// products in any order is within γ·Σ_k |a_ik||b_kj| with γ ≈ K·u (u = 2⁻²⁴, float32's unit
// roundoff), and scaling by α and adding β·C cost a few u more. Twice that bound, and nothing looser.
Tensor rounding_bound(const Problem& p, const Operands& o) {
    const double u = std::ldexp(1.0, -24);
    const Tensor mag = reference(p, o, std::abs(p.alpha), p.beta == 0 ? 0.0 : std::abs(p.beta), /*absolute=*/true);
    return mag * (2.0 * double(p.K + 3) * u) + 1e-30;
}

std::string describe(const Problem& p, const std::string& fn) {
    return fmt::format("{}(trans_a={}, trans_b={}, M={}, N={}, K={}, alpha={}, beta={}, lda/ldb/ldc = stored row + {})",
                       fn, p.ta, p.tb, p.M, p.N, p.K, p.alpha, p.beta, p.pad);
}

void grade(Fn fn, const std::string& name, const Problem& p, std::uint64_t seed, const std::string& hint,
           lab::grading::SourceLocation where = lab::grading::SourceLocation::current()) {
    Operands o(p, qkv::Generator(seed));
    const Operands original = o;
    call(name, [&] {
        fn(p.ta, p.tb, p.M, p.N, p.K, p.alpha, o.A.v.data(), o.A.ld, o.B.v.data(), o.B.ld, p.beta, o.C.v.data(), o.C.ld);
    }, where);
    const std::string nan_hint =
        p.beta == 0 ? "with β = 0 the old C must not be read: it holds NaN in this test, and 0·NaN = NaN; write C = α·AB"
                    : "NaN in C: the padding between stored rows is NaN in this test; you read it. Row i of a stored "
                      "matrix starts at X + i·ld, not X + i·(row length)";
    check(o.C.tensor(),
          {.what = describe(p, name) + "; C as an M×N matrix",
           .expected = reference(p, original, p.alpha, p.beta),
           .tolerance = rounding_bound(p, original),
           .mistakes = {{"you ignored β: C ← α·op(A)·op(B) + β·C (β = 1 accumulates into C)",
                         [&] { return reference(p, original, p.alpha, 0); }},
                        {"you ignored α: C ← α·op(A)·op(B) + β·C", [&] { return reference(p, original, 1, p.beta); }},
                        {"you applied β once per K block (or per k): scale C by β once, then add the products",
                         [&] { return reference(p, original, p.alpha, std::pow(double(p.beta), double((p.K + 255) / 256))); }}},
           .nan_hint = nan_hint,
           .hint = hint},
          where);
    require(o.C.padding_intact(),
            describe(p, name) + ":\n  wrote outside C's M×N elements, into the padding between rows: row i of C starts at "
                                "C + i·ldc, and only its first N elements are C's",
            where);
    require(o.A.v == original.A.v || std::equal(o.A.v.begin(), o.A.v.end(), original.A.v.begin(), [](float x, float y) {
                return x == y || (std::isnan(x) && std::isnan(y));
            }),
            describe(p, name) + ":\n  changed A: the operands are read-only", where);
}

const std::string kTransposeHint =
    "with trans_a, element (i, k) of op(A) is A[k·lda + i] (A is stored K × M); with trans_b, element (k, j) of "
    "op(B) is B[j·ldb + k] (B is stored N × K)";
const std::string kFastHint =
    "matmul_naive gets this right and matmul_fast does not: check the edge tiles and blocks (M, N, K that are "
    "not multiples of your tile and block sizes: rows and columns past the last whole tile), and that every K "
    "block adds into C (β is applied once, before the first block)";

std::vector<Problem> all_transposes(std::int64_t M, std::int64_t N, std::int64_t K) {
    std::vector<Problem> v;
    for (bool ta : {false, true})
        for (bool tb : {false, true}) v.push_back({ta, tb, M, N, K});
    return v;
}

}  // namespace

TEST_CASE("04.1 matmul_naive: C = A·B") {
    std::uint64_t seed = 1;
    for (auto [M, N, K] : std::vector<std::array<std::int64_t, 3>>{{1, 1, 1}, {2, 3, 4}, {7, 5, 3}, {16, 16, 16}, {33, 17, 9}})
        grade(lab::matmul_naive, "matmul_naive", {false, false, M, N, K}, seed++, "");
}

TEST_CASE("04.2 matmul_naive: transposed operands") {
    std::uint64_t seed = 10;
    for (const auto& dims : std::vector<std::array<std::int64_t, 3>>{{5, 7, 3}, {16, 9, 31}})
        for (const Problem& p : all_transposes(dims[0], dims[1], dims[2]))
            grade(lab::matmul_naive, "matmul_naive", p, seed++, kTransposeHint);
}

TEST_CASE("04.3 matmul_naive: alpha, beta and leading dimensions") {
    const std::vector<Problem> problems = {
        {false, false, 6, 5, 4, 0.5f, 2.0f, 3},  {true, false, 6, 5, 4, -1.0f, 1.0f, 1}, {false, true, 6, 5, 4, 2.0f, 0.0f, 2},
        {true, true, 3, 8, 5, 1.5f, -0.5f, 4},   {false, false, 4, 3, 0, 1.0f, 0.5f, 1},  // K = 0: C ← βC
        {false, false, 4, 3, 5, 0.0f, 3.0f, 2},                                            // α = 0: C ← βC
    };
    std::uint64_t seed = 20;
    for (const Problem& p : problems)
        grade(lab::matmul_naive, "matmul_naive", p, seed++,
              "row i of a stored matrix starts at X + i·ld (ld ≥ the row's length), and C ← α·op(A)·op(B) + β·C");
}

TEST_CASE("04.4 matmul_fast: every shape, edges, transposes, alpha, beta, strides") {
    const std::vector<std::array<std::int64_t, 3>> sizes = {{1, 1, 1},    {3, 5, 7},     {8, 8, 8},     {13, 29, 31},
                                                            {64, 64, 64}, {65, 63, 130}, {100, 1, 257}, {1, 100, 257},
                                                            {130, 270, 300}};
    const std::vector<std::pair<float, float>> scales = {{1, 0}, {0.5f, 2}, {-1, 1}, {2, 0}};
    std::uint64_t seed = 40;
    int n = 0;
    for (const auto& [M, N, K] : sizes)
        for (Problem p : all_transposes(M, N, K)) {
            std::tie(p.alpha, p.beta) = scales[std::size_t(n % 4)];
            p.pad = n++ % 3;
            grade(lab::matmul_fast, "matmul_fast", p, seed++, kFastHint);
        }
}
