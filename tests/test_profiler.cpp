// The op profiler: what it counts (calls, forward and backward rows, FLOPs of the products, bytes),
// that nested ops count once, that nothing is collected when it is off, and one profiler at a time.
#include <catch2/catch.hpp>

#include <algorithm>

#include "qkv/qkv.hpp"

using namespace qkv;

namespace {
const OpProfile* find(const std::vector<OpProfile>& rows, const std::string& name) {
    auto it = std::find_if(rows.begin(), rows.end(), [&](const OpProfile& r) { return r.name == name; });
    return it == rows.end() ? nullptr : &*it;
}
}  // namespace

TEST_CASE("the profiler counts calls, time, FLOPs and bytes per op and direction", "[profiler]") {
    Generator g(1);
    const Tensor a = randn({4, 5}, g).requires_grad_();
    const Tensor b = randn({5, 6}, g).requires_grad_();
    CHECK_FALSE(profiling());
    std::vector<OpProfile> rows;
    {
        Profiler prof;
        CHECK(profiling());
        for (int i = 0; i < 3; ++i) {
            const Tensor loss = qkv::sum(tanh(matmul(a, b)));
            loss.backward();
        }
        prof.stop();
        CHECK_FALSE(profiling());
        rows = prof.ops();
        CHECK(prof.seconds() > 0);
        const std::string table = prof.table();
        CHECK_THAT(table, Catch::Contains("matmul backward") && Catch::Contains("(outside ops)") &&
                              Catch::Contains("GFLOP/s"));
    }
    const OpProfile* mm = find(rows, "matmul");
    const OpProfile* mmb = find(rows, "matmul backward");
    REQUIRE(mm);
    REQUIRE(mmb);
    CHECK(mm->calls == 3);
    CHECK(mmb->calls == 3);
    CHECK(mm->flops == 3 * 2.0 * 4 * 6 * 5);   // 2·M·N·K per call
    CHECK(mmb->flops == 3 * 4.0 * 4 * 6 * 5);  // dA and dB
    CHECK(mm->bytes == 3 * 4 * 6 * 4);         // the (4, 6) f32 result, each call
    REQUIRE(find(rows, "tanh"));
    CHECK(find(rows, "tanh")->flops == 0);  // an elementwise op does not claim FLOPs
    CHECK(find(rows, "sum backward")->calls == 3);
    for (const OpProfile& r : rows) CHECK(r.seconds >= 0);
}

TEST_CASE("the profiler counts an op once, not the ops inside it", "[profiler]") {
    // matmul of (2,1,3,4) @ (1,3,4,5) broadcasts its batch to (2,3) with expand, an op of its own,
    // called inside matmul: only matmul is counted.
    Generator g(2);
    const Tensor a = randn({2, 1, 3, 4}, g), b = randn({1, 3, 4, 5}, g);
    Profiler prof;
    (void)matmul(a, b);
    (void)matmul(a, b);
    prof.stop();
    CHECK(find(prof.ops(), "expand") == nullptr);
    CHECK(find(prof.ops(), "matmul")->calls == 2);
}

TEST_CASE("nothing is collected while the profiler is off, and one runs at a time", "[profiler]") {
    Generator g(3);
    const Tensor x = randn({8}, g);
    {
        Profiler prof;
        CHECK_THROWS_WITH(Profiler(), Catch::Contains("a profiler is already running"));
        prof.stop();
        (void)tanh(x);  // after stop: not counted
        CHECK(prof.ops().empty());
    }
    Profiler again;  // the first one is gone: a new one may start
    CHECK(again.ops().empty());
}
