/// \file
/// \brief The backward pass: iterative topological sort, gradient accumulation, graph teardown.
///
/// A reader learns here how `loss.backward()` runs. A depth-first search with an explicit stack (no
/// recursion, so a chain of 100 000 ops cannot overflow the stack) orders the graph so that every node
/// runs before the nodes that produced its inputs; inputs are visited in order, so the order is the
/// same on every run. An intermediate tensor's gradient is collected in its producing node and freed
/// as soon as that node has run; only leaves keep theirs, accumulated with `+=`. Node's destructor
/// avoids the same recursion when a long graph dies. Also here: the op registry and grad mode.
#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "core/dispatch.hpp"
#include "qkv/core/autograd.hpp"
#include "qkv/core/profiler.hpp"

namespace qkv {

// ---- the op registry ----------------------------------------------------------------------------

namespace {
std::vector<const OpDef*>& registry() {
    static std::vector<const OpDef*> ops;  // function-local: safe from static-init order issues
    return ops;
}

thread_local bool g_grad_enabled = true;
std::string g_fault_op;       // test-only: name of the op whose backward is broken
double g_fault_scale = 1.0;
}  // namespace

OpDef::OpDef(const char* n, bool b) : name(n), builtin(b) {
    if (builtin) registry().push_back(this);
}

const std::vector<const OpDef*>& op_registry() { return registry(); }

void detail::set_backward_fault(const std::string& op_name, double scale) {
    g_fault_op = op_name;
    g_fault_scale = scale;
}

// ---- grad mode ----------------------------------------------------------------------------------

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

// ---- recording ----------------------------------------------------------------------------------

Tensor record(const OpDef& op, Tensor out, std::vector<Tensor> inputs, BackwardFn backward) {
    if (!g_grad_enabled) return out;
    const bool any = std::any_of(inputs.begin(), inputs.end(),
                                 [](const Tensor& t) { return t.defined() && t.requires_grad(); });
    if (!any) return out;
    if (!is_floating(out.dtype())) fail("{}: internal: integer output cannot carry gradients", op.name);
    auto node = std::make_shared<Node>();
    node->op = &op;
    node->inputs = std::move(inputs);
    node->backward = std::move(backward);
    node->shape = out.shape();
    node->dtype = out.dtype();
    out.impl()->grad_fn = std::move(node);
    if (profiling()) out.impl()->grad_fn->flops = detail::OpScope::pending_backward_flops();  // for the profiler
    out.impl()->requires_grad = true;
    return out;
}

// ---- where gradients go -----------------------------------------------------------------------
// A non-leaf input's gradient is collected in its producing node (and released after that node's
// backward ran); a leaf's gradient lives on the tensor, where the user reads it.

namespace {
Tensor& grad_slot(const Tensor& t) {
    TensorImpl* impl = t.impl();
    return impl->grad_fn ? impl->grad_fn->grad : impl->grad;
}

void accumulate(Tensor& slot, const Tensor& g) {
    if (!slot.defined()) {
        slot = g.clone();
        return;
    }
    detail::visit_float(slot.dtype(), "backward", [&]<class T>(T) {
        T* s = slot.data<T>();
        const T* p = g.data<T>();
        for (std::int64_t i = 0; i < slot.numel(); ++i) s[i] += p[i];
    });
}
}  // namespace

bool BackwardContext::needs(std::size_t i) const {
    if (i >= node_.inputs.size()) return false;  // e.g. an optional input that was not given
    const Tensor& t = node_.inputs[i];
    return t.defined() && t.requires_grad();
}

Tensor* BackwardContext::grad(std::size_t i) {
    if (!needs(i)) return nullptr;
    const Tensor& t = node_.inputs[i];
    Tensor& slot = grad_slot(t);
    if (!slot.defined()) slot = zeros(t.shape(), t.dtype());
    return &slot;
}

Tensor* BackwardContext::grad_overwrite(std::size_t i, bool& accumulate) {
    accumulate = true;
    if (!needs(i)) return nullptr;
    const Tensor& t = node_.inputs[i];
    Tensor& slot = grad_slot(t);
    if (slot.defined()) return &slot;
    for (std::size_t j = 0; j < node_.inputs.size(); ++j)
        if (j != i && node_.inputs[j].impl() == t.impl()) return grad(i);  // aliased input: zeros + add
    slot = empty(t.shape(), t.dtype());
    accumulate = false;
    return &slot;
}

// ---- topological order ----------------------------------------------------------------------------
// Depth-first search with an explicit stack; a node is emitted after all of its inputs' nodes
// (post-order). Reversed, that is an order in which every node comes before the nodes that produced
// its inputs: exactly the order backward must run in. Inputs are visited in order, so the result is
// the same on every run.

namespace {
std::vector<Node*> topo_order(Node* root) {
    std::vector<Node*> post;
    std::unordered_set<Node*> seen{root};
    std::vector<std::pair<Node*, std::size_t>> stack{{root, 0}};
    while (!stack.empty()) {
        auto& [node, next] = stack.back();
        if (next < node->inputs.size()) {
            const Tensor& in = node->inputs[next++];
            Node* child = in.defined() ? in.impl()->grad_fn.get() : nullptr;
            if (child && seen.insert(child).second) stack.emplace_back(child, 0);
        } else {
            post.push_back(node);
            stack.pop_back();
        }
    }
    std::reverse(post.begin(), post.end());
    return post;
}

void run_node(Node& node) {
    const detail::OpScope profile(*node.op, /*backward=*/true, node.flops);  // the profiler's hook
    BackwardContext ctx(node);
    if (!g_fault_op.empty() && g_fault_op == node.op->name) {
        Tensor scaled = node.grad.clone();
        detail::visit_float(scaled.dtype(), "backward", [&]<class T>(T) {
            T* p = scaled.data<T>();
            for (std::int64_t i = 0; i < scaled.numel(); ++i) p[i] *= static_cast<T>(g_fault_scale);
        });
        node.backward(scaled, ctx);
    } else {
        node.backward(node.grad, ctx);
    }
}
}  // namespace

std::vector<std::string> graph_ops(const Tensor& t) {
    std::vector<std::string> names;
    if (!t.defined() || !t.grad_fn()) return names;
    for (Node* n : topo_order(t.grad_fn().get())) names.emplace_back(n->op->name);
    return names;
}

// ---- backward -------------------------------------------------------------------------------------

void Tensor::backward() const {
    if (!defined()) fail("backward: called on an undefined tensor");
    if (numel() != 1)
        fail("backward: output has shape {} ({} elements); pass a gradient of that shape, or reduce it "
             "to a scalar first (e.g. qkv::sum)", shape_str(shape()), numel());
    backward(ones_like(*this));
}

void Tensor::backward(const Tensor& grad_output) const {
    if (!defined()) fail("backward: called on an undefined tensor");
    if (!requires_grad())
        fail("backward: tensor {} does not require grad (no parameter in its graph has "
             "requires_grad_(), or it was computed under NoGradGuard)", shape_str(shape()));
    detail::check_defined("backward", grad_output, "grad_output");
    if (grad_output.shape() != shape() || grad_output.dtype() != dtype())
        fail("backward: grad_output {} {} does not match output {} {}", shape_str(grad_output.shape()),
             dtype_name(grad_output.dtype()), shape_str(shape()), dtype_name(dtype()));
    // Backward functions build temporary tensors; they must not record graphs of their own.
    NoGradGuard no_grad;
    Node* root = grad_fn().get();
    if (!root) {  // a leaf: its gradient is grad_output itself
        accumulate(impl()->grad, grad_output);
        return;
    }
    accumulate(root->grad, grad_output);
    for (Node* node : topo_order(root)) {
        if (!node->grad.defined()) continue;  // no gradient reached this node
        run_node(*node);
        node->grad = Tensor();  // release dL/dy: it is no longer needed
    }
}

// ---- teardown -------------------------------------------------------------------------------------
// Destroying the last handle of a long chain would destroy node after node recursively (node →
// input tensor → its node → ...), which overflows the stack at around 100 000 ops. Instead each
// dying node hands the nodes it solely owns to a queue, and only the outermost destructor drains it.

namespace {
thread_local bool g_draining = false;
thread_local std::vector<std::shared_ptr<Node>> g_dying;
}  // namespace

/// \cond INTERNAL
Node::~Node() {
    backward = nullptr;  // drop tensors the backward captured first, so use counts below are exact
    for (Tensor& in : inputs) {
        TensorImpl* impl = in.impl();
        if (impl && in.impl_ptr().use_count() == 1 && impl->grad_fn) g_dying.push_back(std::move(impl->grad_fn));
    }
    inputs.clear();
    if (g_draining) return;
    g_draining = true;
    while (!g_dying.empty()) {
        std::shared_ptr<Node> n = std::move(g_dying.back());
        g_dying.pop_back();
        n.reset();  // may push more nodes onto g_dying
    }
    g_draining = false;
}
/// \endcond

}  // namespace qkv
