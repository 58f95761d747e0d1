/// \file
/// \brief The umbrella header: `#include <qkv/qkv.hpp>` brings in all of qkv.
///
/// Start reading at tensor.hpp (what a tensor is), then autograd.hpp (how gradients flow),
/// ops.hpp (the differentiable functions), gradcheck.hpp (how we know they are right), and
/// kernels/gemm.hpp (the matrix multiply everything runs on); then nn/ (layers, attention, the
/// transformer), optim.hpp, io/ (checkpoints), data/tasks.hpp and train.hpp (the toy-task loop),
/// data/tokenizer.hpp and train/text.hpp (language models on a text of your own), io/state_dict.hpp
/// and train/import.hpp (the bridge to PyTorch: weights by name, both ways).
#pragma once

#include "qkv/core/autograd.hpp"
#include "qkv/data/tasks.hpp"
#include "qkv/data/tokenizer.hpp"
#include "qkv/error.hpp"
#include "qkv/core/generator.hpp"
#include "qkv/core/gradcheck.hpp"
#include "qkv/core/profiler.hpp"
#include "qkv/io/checkpoint.hpp"
#include "qkv/io/safetensors.hpp"
#include "qkv/io/state_dict.hpp"
#include "qkv/kernels/gemm.hpp"
#include "qkv/nn/attention.hpp"
#include "qkv/nn/layers.hpp"
#include "qkv/nn/module.hpp"
#include "qkv/nn/transformer.hpp"
#include "qkv/ops/ops.hpp"
#include "qkv/optim/optim.hpp"
#include "qkv/kernels/parallel.hpp"
#include "qkv/kernels/peak.hpp"
#include "qkv/core/tensor.hpp"
#include "qkv/train/import.hpp"
#include "qkv/train/text.hpp"
#include "qkv/train/train.hpp"
#include "qkv/viz/dot.hpp"
#include "qkv/viz/attention_page.hpp"
#include "qkv/viz/plot.hpp"
