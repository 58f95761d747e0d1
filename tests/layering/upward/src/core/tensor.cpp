// A deliberate violation of the layering rule, for the test "layering.upward_include_fails":
// the core (tensor, autograd) must not include from the ops layer above it.
#include "qkv/core/tensor.hpp"
#include "qkv/ops/ops.hpp"
