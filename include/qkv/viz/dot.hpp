/// \file
/// \brief Draw an autograd graph: `qkv::to_dot(loss)` returns it as Graphviz DOT text.
///
/// A reader learns here what the graph that backward() walks actually looks like. Every op that
/// ran on a tensor requiring a gradient left a Node behind (autograd.hpp); each node knows its op,
/// its output shape and its inputs. Starting from the tensor you pass (usually the loss), to_dot
/// walks those nodes back to the leaves and prints one box per leaf tensor (parameters and
/// constants, with their shapes and, if asked, their values and gradients), one ellipse per op
/// (its name and output shape), and one arrow per use of a tensor, pointing the way data flows:
/// from the leaves, through the ops, to the result. Render the text with Graphviz:
///
///     dot -Tsvg graph.dot -o graph.svg
///
/// The docs' "How autograd works" page shows such a picture, made by docs/autograd_graph.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "qkv/core/tensor.hpp"

namespace qkv {

/// \brief What to_dot() draws besides the graph's structure.
struct DotOptions {
    /// Show the values of leaf tensors and of the root (only for tensors with at most
    /// max_elements elements; larger ones show their shape only).
    bool show_values = false;
    /// Show the accumulated gradient (Tensor::grad()) of leaf tensors that have one, i.e. after
    /// backward() ran (again only up to max_elements elements).
    bool show_grads = false;
    /// The largest tensor whose numbers are printed.
    std::int64_t max_elements = 16;
    /// Significant digits of printed numbers.
    int precision = 4;
    /// Names for tensors, e.g. `{{"W", W}, {"x", x}}`: a leaf (or the root) that is one of these
    /// handles, or shares its storage and shape, is labelled with the name.
    std::vector<std::pair<std::string, Tensor>> names = {};
    /// Graphviz layout direction: "LR" (left to right, the default) or "TB" (top to bottom).
    std::string rankdir = "LR";
};

/// \brief The autograd graph that produced \p root, as Graphviz DOT text (`digraph qkv { ... }`).
///
/// Leaves that require a gradient (parameters) are drawn as filled boxes, other leaves (constants,
/// inputs) as dashed boxes, ops as ellipses labelled with the op name and output shape, and the
/// root as a double box. An input used twice by the same op gets two arrows. The output is
/// deterministic: the same graph always gives the same text. A tensor with no graph (a leaf)
/// gives a graph of one box.
/// \param root the graph's output, usually the loss (must be defined)
/// \param options what to show besides the structure
/// \return the DOT text, ending in a newline
std::string to_dot(const Tensor& root, const DotOptions& options = {});

}  // namespace qkv
