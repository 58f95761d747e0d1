// The gradcheck machinery and the tests *about* the op list: every op has cases, every case really
// exercises its op, and breaking any op's backward makes its cases fail.
#include <cmath>
#include <limits>
#include <set>

#include "gradcheck_cases.hpp"

namespace qkv::test {

std::map<std::string, CaseFactory>& case_registry() {
    static std::map<std::string, CaseFactory> reg;
    return reg;
}

bool register_cases(const char* op, CaseFactory factory) {
    auto [it, inserted] = case_registry().emplace(op, factory);
    if (!inserted) throw Error(fmt::format("two GRADCHECK_OP blocks for op '{}'", op));
    return true;
}

Tensor rn(const Shape& shape, std::uint64_t seed) {
    Generator g(seed);
    return randn(shape, g, f64);
}

Tensor un(const Shape& shape, double lo, double hi, std::uint64_t seed) {
    Generator g(seed);
    return uniform(shape, lo, hi, g, f64);
}

void run_cases(const std::string& op) {
    const CaseList cases = case_registry().at(op)();
    REQUIRE(cases.size() >= 2);  // several shapes per op, not one lucky point
    for (const auto& c : cases) {
        GradcheckOptions opt;
        opt.label = op + " [" + c.label + "]";
        const auto rep = gradcheck(c.f, c.inputs, opt);
        INFO(rep.summary());
        CHECK(rep.ok);
        // The case must actually run the op it claims to check.
        CHECK(std::find(rep.ops.begin(), rep.ops.end(), op) != rep.ops.end());
    }
}

}  // namespace qkv::test

using namespace qkv;
using namespace qkv::test;

TEST_CASE("every registered op has a gradcheck case, and every case names a real op", "[gradcheck][meta]") {
    std::set<std::string> lib;
    for (const OpDef* op : op_registry()) lib.insert(op->name);
    REQUIRE(lib.size() >= 39);  // the foundation's op list; it only grows
    for (const auto& name : lib) {
        INFO("op '" << name << "' is registered by the library but has no GRADCHECK_OP case");
        CHECK(case_registry().count(name) == 1);
    }
    for (const auto& [name, factory] : case_registry()) {
        INFO("GRADCHECK_OP('" << name << "') names no registered op");
        CHECK(lib.count(name) == 1);
    }
}

TEST_CASE("breaking any op's backward makes its gradcheck cases fail", "[gradcheck][meta]") {
    // A 1% error in the upstream gradient of one op at a time; gradcheck's rtol is 0.1%.
    for (const OpDef* op : op_registry()) {
        const auto it = case_registry().find(op->name);
        if (it == case_registry().end()) continue;  // reported by the test above
        detail::set_backward_fault(op->name, 1.01);
        bool caught = false;
        for (const auto& c : it->second()) caught = caught || !gradcheck(c.f, c.inputs).ok;
        detail::set_backward_fault("");
        INFO("a broken backward of '" << op->name << "' went unnoticed by its gradcheck cases");
        CHECK(caught);
    }
}

// A user-defined op with a deliberately wrong backward: y = x², but backward forgets the 2.
static Tensor bad_square(const Tensor& x) {
    static const OpDef kBadSquare{"bad_square", /*builtin=*/false};
    Tensor y = empty(x.shape(), x.dtype());
    for (std::int64_t i = 0; i < x.numel(); ++i) y.data<double>()[i] = x.data<double>()[i] * x.data<double>()[i];
    return record(kBadSquare, y, {x}, [x](const Tensor& dy, BackwardContext& ctx) {
        Tensor* dx = ctx.grad(0);
        if (!dx) return;
        for (std::int64_t i = 0; i < x.numel(); ++i)
            dx->data<double>()[i] += x.data<double>()[i] * dy.data<double>()[i];  // wrong: should be 2x·dy
    });
}

TEST_CASE("gradcheck catches a deliberately wrong backward and names the element", "[gradcheck]") {
    const Tensor x = rn({3, 2}, 7);
    const auto rep = gradcheck([](const std::vector<Tensor>& in) { return bad_square(in[0]); }, {x});
    INFO(rep.summary());
    CHECK_FALSE(rep.ok);
    CHECK(rep.op == "bad_square");
    CHECK(rep.input == 0);
    CHECK(rep.input_shape == Shape{3, 2});
    // At the reported element the analytic value is half the numeric one.
    CHECK(rep.analytic == Approx(rep.numeric / 2).epsilon(1e-6));
    CHECK(rep.summary().find("FAILED") != std::string::npos);
    // The same function composed from correct ops passes.
    CHECK(gradcheck([](const std::vector<Tensor>& in) { return in[0] * in[0]; }, {x}).ok);
}

TEST_CASE("gradcheck checks every element and reports how many", "[gradcheck]") {
    const auto rep = gradcheck([](const std::vector<Tensor>& in) { return tanh(in[0]) * in[1]; },
                               {rn({4, 5}, 1), rn({5}, 2)});
    CHECK(rep.ok);
    CHECK(rep.checked == 25);
    CHECK(rep.ops == std::vector<std::string>{"mul", "tanh"});
}

TEST_CASE("gradcheck refuses f32 inputs and functions without gradient", "[gradcheck][errors]") {
    Generator g(1);
    REQUIRE_THROWS_WITH(gradcheck([](const std::vector<Tensor>& in) { return in[0]; }, {randn({2}, g)}),
                        Catch::Contains("f64"));
    REQUIRE_THROWS_WITH(gradcheck([](const std::vector<Tensor>&) { return ones({2}, f64); }, {rn({2})}),
                        Catch::Contains("does not depend"));
}

namespace qkv::test {

TEST_CASE("max_abs_diff and allclose compare elementwise, and never overlook a NaN", "[gradcheck][compare]") {
    const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
    const Tensor a = from({1.0, -2.0, 3.0, 4.0}, {2, 2}, f64);
    const Tensor b = from({1.0, -2.5, 3.0, 4.25}, {2, 2}, f32);  // dtypes may differ
    CHECK(max_abs_diff(a, b) == 0.5);
    CHECK(max_abs_diff(a, a) == 0.0);
    CHECK(allclose(a, a));
    CHECK_FALSE(allclose(a, b));
    CHECK(allclose(a, b, 0.0, 0.5));    // |a − b| ≤ 0.5 everywhere
    CHECK_FALSE(allclose(a, b, 0.0, 0.49));
    CHECK(allclose(a, b, 0.2, 0.0));    // 0.5 ≤ 0.2·|−2.5|, 0.25 ≤ 0.2·4.25
    CHECK_FALSE(allclose(a, b, 0.05, 0.0));

    // A NaN on either side: the difference is NaN and nothing is close, not even NaN to NaN.
    const Tensor n = from({1.0, nan, 3.0, 4.0}, {2, 2}, f64);
    CHECK(std::isnan(max_abs_diff(a, n)));
    CHECK(std::isnan(max_abs_diff(n, a)));
    CHECK(std::isnan(max_abs_diff(n, n)));
    CHECK_FALSE(allclose(n, n, 1.0, 1.0));
    // Infinities: equal ones match, anything else is infinitely far (and never within tolerance).
    const Tensor i1 = from({inf, -inf}, {2}, f64), i2 = from({inf, 1.0}, {2}, f64);
    CHECK(max_abs_diff(i1, i1) == 0.0);
    CHECK(allclose(i1, i1));
    CHECK(max_abs_diff(i1, i2) == inf);
    CHECK_FALSE(allclose(i2, i1, 1.0, 1.0));
    CHECK_FALSE(allclose(from({1.0}, {1}, f64), from({inf}, {1}, f64), 1.0, 1.0));
    CHECK(max_abs_diff(zeros({0, 3}), zeros({0, 3})) == 0.0);

    CHECK_THROWS_WITH(max_abs_diff(a, zeros({4})), Catch::Contains("max_abs_diff") && Catch::Contains("(2,2)") &&
                                                       Catch::Contains("(4)"));
    CHECK_THROWS_WITH(allclose(a, zeros({2, 3})), Catch::Contains("allclose: shapes differ"));
    CHECK_THROWS_WITH(allclose(a, a, -1.0), Catch::Contains("tolerances must be >= 0"));
    CHECK_THROWS_WITH(allclose(a, a, 1e-5, nan), Catch::Contains("tolerances must be >= 0"));
    CHECK_THROWS_AS(max_abs_diff(Tensor(), a), Error);
}

}  // namespace qkv::test
