// Lab 10: the AdamW update. Your file: replace the `throw NotImplemented(...)` with your code, then
// run `build/tutorials/labs/grade 10`. README.md has the rule, line by line.
//
// param, grad, state.m and state.v are float64 tensors of the same shape: loop over
// param.data<double>()[i] for i < param.numel(). On the first step, state.m and state.v are
// undefined: create them with qkv::zeros(param.shape(), qkv::f64).
#include "adamw.hpp"

#include <cmath>

namespace lab {

void adamw_step(qkv::Tensor& param, const qkv::Tensor& grad, AdamWState& state, const AdamWHyper& h) {
    throw NotImplemented("adamw_step");
}

}  // namespace lab
