/// \file
/// \brief The umbrella header: `#include <qkv/qkv.hpp>` brings in all of qkv.
///
/// Start reading at tensor.hpp (what a tensor is), then autograd.hpp (how gradients flow),
/// ops.hpp (the differentiable functions), gradcheck.hpp (how we know they are right), and
/// kernels/gemm.hpp (the matrix multiply everything runs on).
#pragma once

#include "qkv/autograd.hpp"
#include "qkv/error.hpp"
#include "qkv/generator.hpp"
#include "qkv/gradcheck.hpp"
#include "qkv/kernels/gemm.hpp"
#include "qkv/ops.hpp"
#include "qkv/tensor.hpp"
