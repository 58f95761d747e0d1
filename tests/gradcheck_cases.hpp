/// \file
/// \brief The registry of gradient-check cases: one GRADCHECK_OP block per differentiable op.
///
/// `GRADCHECK_OP("tanh") { return {...cases...}; }` defines the cases for op "tanh" and a Catch2
/// test case "gradcheck: tanh" that runs them. The cases are also kept in a registry so that
/// other tests can (1) demand a case for every op the library registers and (2) break each op's
/// backward in turn and demand that its cases notice.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "qkv/qkv.hpp"

namespace qkv::test {

/// One point at which to check one function.
struct GradCase {
    std::string label;                                           ///< shown in failures
    std::vector<Tensor> inputs;                                  ///< f64 inputs
    std::function<Tensor(const std::vector<Tensor>&)> f;         ///< the function of them
};
using CaseList = std::vector<GradCase>;
using CaseFactory = CaseList (*)();

/// op name → its case factory.
std::map<std::string, CaseFactory>& case_registry();
/// Register a factory (called at static-initialisation time by GRADCHECK_OP).
bool register_cases(const char* op, CaseFactory factory);
/// Run every case of an op with Catch2 assertions.
void run_cases(const std::string& op);

/// Deterministic f64 inputs: standard normal, or uniform in [lo, hi).
Tensor rn(const Shape& shape, std::uint64_t seed = 1);
Tensor un(const Shape& shape, double lo, double hi, std::uint64_t seed = 1);

}  // namespace qkv::test

#define QKV_GC_CAT2(a, b) a##b
#define QKV_GC_CAT(a, b) QKV_GC_CAT2(a, b)
#define GRADCHECK_OP(op)                                                                                  \
    static ::qkv::test::CaseList QKV_GC_CAT(gc_cases_, __LINE__)();                                       \
    [[maybe_unused]] static const bool QKV_GC_CAT(gc_reg_, __LINE__) =                                    \
        ::qkv::test::register_cases(op, &QKV_GC_CAT(gc_cases_, __LINE__));                               \
    TEST_CASE("gradcheck: " op, "[gradcheck]") { ::qkv::test::run_cases(op); }                            \
    static ::qkv::test::CaseList QKV_GC_CAT(gc_cases_, __LINE__)()
