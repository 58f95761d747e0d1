/// \file
/// \brief to_dot: walk an autograd graph from its output and print it in Graphviz's DOT language.
///
/// The walk is the same one backward() does (autograd.cpp), written out again here because it
/// wants different things: backward needs an order to run nodes in, a picture needs every node and
/// every edge once, with stable names. DOT itself is simple: `a -> b;` is an arrow, and each node
/// gets a `[label="...", shape=...]` list. We name nodes t0, t1, ... (tensors) and op0, op1, ...
/// (ops) in the order we first meet them, so the text is the same on every run.
#include "qkv/viz/dot.hpp"

#include <algorithm>
#include <map>
#include <utility>

#include <fmt/format.h>

#include "qkv/core/autograd.hpp"
#include "qkv/error.hpp"

namespace qkv {

namespace {

// Inside a DOT string only `"` and `\` need escaping; newlines become the two characters `\n`,
// which Graphviz draws as centred line breaks.
std::string escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

// "[1, 2.5, -3]" for tensors up to max_elements, else "" (the shape says enough). A 0-d tensor is
// printed as its bare value.
std::string numbers(const Tensor& t, const DotOptions& opt) {
    if (!t.defined() || t.numel() > opt.max_elements) return "";
    const std::vector<double> v = t.to_vector<double>();
    std::string out = t.dim() == 0 ? "" : "[";
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) out += ", ";
        out += fmt::format("{:.{}g}", v[i], opt.precision);
    }
    if (t.dim() != 0) out += "]";
    return out;
}

// The user's name for this tensor, if it has one.
std::string name_of(const Tensor& t, const DotOptions& opt) {
    for (const auto& [name, named] : opt.names) {
        if (!named.defined()) continue;
        if (named.impl() == t.impl() || (named.shares_storage(t) && named.shape() == t.shape())) return name;
    }
    return "";
}

// The label of a tensor box: name (if any), shape and dtype, then values and gradient on request.
std::string tensor_label(const Tensor& t, const DotOptions& opt, bool leaf) {
    std::string label = name_of(t, opt);
    if (!label.empty()) label += " ";
    label += fmt::format("{} {}", shape_str(t.shape()), dtype_name(t.dtype()));
    if (opt.show_values) {
        const std::string v = numbers(t, opt);
        if (!v.empty()) label += "\n= " + v;
    }
    if (opt.show_grads && leaf && t.grad().defined()) {
        const std::string g = numbers(t.grad(), opt);
        if (!g.empty()) label += "\ngrad " + g;
    }
    return label;
}

}  // namespace

std::string to_dot(const Tensor& root, const DotOptions& opt) {
    if (!root.defined()) fail("to_dot: root is an undefined tensor");
    if (opt.rankdir != "LR" && opt.rankdir != "TB") fail("to_dot: rankdir must be \"LR\" or \"TB\", got \"{}\"", opt.rankdir);

    std::string out = "digraph qkv {\n";
    out += fmt::format("  rankdir={};\n", opt.rankdir);
    out += "  node [fontname=\"Helvetica\", fontsize=11];\n";
    out += "  edge [color=\"#555555\"];\n";

    // The root: a double box, so the eye finds where the computation ends.
    const bool root_is_leaf = !root.grad_fn();
    out += fmt::format("  result [shape=box, peripheries=2, style=filled, fillcolor=\"#fde9b3\", label=\"{}\"];\n",
                       escape(tensor_label(root, opt, root_is_leaf)));
    if (root_is_leaf) return out + "}\n";

    // Walk the ops from the root back to the leaves with an explicit stack (graphs can be deep).
    // ids: an op's number in meeting order; leaves: each leaf tensor's number, keyed by its
    // TensorImpl so that every handle to the same tensor is the same box.
    std::map<const Node*, std::size_t> op_id;
    std::vector<const Node*> ops;
    std::map<const TensorImpl*, std::size_t> leaf_id;
    std::vector<Tensor> leaves;
    std::vector<const Node*> stack{root.grad_fn().get()};
    op_id[root.grad_fn().get()] = 0;
    ops.push_back(root.grad_fn().get());
    std::string edges;
    while (!stack.empty()) {
        const Node* node = stack.back();
        stack.pop_back();
        const std::string to = fmt::format("op{}", op_id.at(node));
        for (const Tensor& in : node->inputs) {
            if (!in.defined()) continue;  // an optional input that was not given (e.g. no bias)
            std::string from;
            if (const Node* producer = in.grad_fn().get()) {
                auto [it, fresh] = op_id.emplace(producer, ops.size());
                if (fresh) {
                    ops.push_back(producer);
                    stack.push_back(producer);
                }
                from = fmt::format("op{}", it->second);
            } else {
                auto [it, fresh] = leaf_id.emplace(in.impl(), leaves.size());
                if (fresh) leaves.push_back(in);
                from = fmt::format("t{}", it->second);
            }
            edges += fmt::format("  {} -> {};\n", from, to);
        }
    }

    // Leaves: parameters (requires_grad) filled, everything else (inputs, constants) dashed.
    for (std::size_t i = 0; i < leaves.size(); ++i) {
        const Tensor& t = leaves[i];
        const std::string style = t.requires_grad() ? "style=filled, fillcolor=\"#cfe2f3\"" : "style=dashed";
        out += fmt::format("  t{} [shape=box, {}, label=\"{}\"];\n", i, style, escape(tensor_label(t, opt, true)));
    }
    // Ops: the op's name and the shape of what it computed.
    for (std::size_t i = 0; i < ops.size(); ++i)
        out += fmt::format("  op{} [shape=ellipse, label=\"{}\\n{}\"];\n", i, escape(ops[i]->op->name),
                           escape(shape_str(ops[i]->shape)));
    out += edges;
    out += "  op0 -> result;\n";
    return out + "}\n";
}

}  // namespace qkv
