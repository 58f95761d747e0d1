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
#include <cmath>
#include <cstring>
#include <unordered_set>

#include "core/dispatch.hpp"
#include "kernels/finite.hpp"
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
// Anomaly mode. record() and run_node() test this one flag and do nothing more when it is off; the
// op profiler (issue 19) hooks into the same two places and should keep that promise (one flag,
// one predictable branch) when it lands.
thread_local bool g_anomaly = false;
thread_local const Scope* g_scope = nullptr;
std::string g_fault_op;       // test-only: name of the op whose backward is broken
double g_fault_scale = 1.0;
}  // namespace

OpDef::OpDef(const char* n, bool b, bool infinities) : name(n), builtin(b), makes_infinities(infinities) {
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

// ---- scopes -------------------------------------------------------------------------------------

std::string Scope::scope_path() const {
    std::vector<const std::string*> names;
    for (const Scope* s = this; s && s->scope_parent_; s = s->scope_parent_) names.push_back(&s->scope_name_);
    std::string path;
    for (auto it = names.rbegin(); it != names.rend(); ++it) path += (path.empty() ? "" : ".") + **it;
    return path;
}

void Scope::set_scope_parent(const Scope* parent, std::string name) {
    scope_parent_ = parent;
    scope_name_ = std::move(name);
}

ScopeGuard::ScopeGuard(const Scope& scope) : previous_(g_scope) { g_scope = &scope; }
ScopeGuard::~ScopeGuard() { g_scope = previous_; }
const Scope* current_scope() { return g_scope; }

// ---- anomaly mode -------------------------------------------------------------------------------
// Every check reads a whole tensor, so it runs only when the mode is on; the scan itself is the
// vectorised kernels::first_non_finite. A report says what the value is, where it first is, which
// op made it in which module, and what its inputs were — so that the reader can tell an op that
// *created* a NaN or infinity from finite inputs (an overflow, a log of 0, a division by 0) from
// one that merely received it (a parameter that was already NaN).

void set_detect_anomaly(bool on) { g_anomaly = on; }
bool detect_anomaly_enabled() { return g_anomaly; }
AnomalyMode::AnomalyMode(bool on) : previous_(g_anomaly) { g_anomaly = on; }
AnomalyMode::~AnomalyMode() { g_anomaly = previous_; }

namespace {

// The first non-finite element of a floating tensor, or −1 (always −1 for integer and bool tensors).
std::int64_t first_bad(const Tensor& t) {
    if (!t.defined()) return -1;
    if (t.dtype() == DType::f32) return kernels::first_non_finite(t.data<float>(), t.numel());
    if (t.dtype() == DType::f64) return kernels::first_non_finite(t.data<double>(), t.numel());
    return -1;
}

bool has_nan(const Tensor& t) {
    return detail::visit_float(t.dtype(), "anomaly", [&]<class T>(T) {
        const T* p = t.data<T>();
        for (std::int64_t i = 0; i < t.numel(); ++i)
            if (std::isnan(p[i])) return true;
        return false;
    });
}

// "NaN" / "inf" / "-inf" for element i, with where it is: "NaN (first at index 17 of (32,16,64))".
std::string describe_bad(const Tensor& t, std::int64_t i) {
    const double v = detail::visit_float(t.dtype(), "anomaly", [&]<class T>(T) { return double(t.data<T>()[i]); });
    return fmt::format("{} (first at index {} of {})", std::isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf", i,
                       shape_str(t.shape()));
}

std::string where(const std::string& scope, bool known) {
    if (!known) return "outside any module";
    return scope.empty() ? "at the model's top level" : fmt::format("in {}", scope);
}

// Where an input came from: a recorded op (named, with its module) or a leaf.
std::string origin(const Tensor& in) {
    if (const auto& node = in.grad_fn())
        return fmt::format("made by '{}' ({})", node->op->name, where(node->scope, node->in_scope));
    return in.requires_grad() ? "a leaf that requires grad: a parameter" : "a leaf tensor (data, or computed without "
                                                                          "recording)";
}

[[noreturn]] void report_forward(const OpDef& op, const Tensor& out, std::int64_t bad, const std::vector<Tensor>& inputs) {
    const Scope* scope = g_scope;
    const std::string path = scope ? scope->scope_path() : "";
    std::string msg = fmt::format("anomaly: the forward of '{}' ({}) produced {}", op.name, where(path, scope != nullptr),
                                  describe_bad(out, bad));
    std::vector<std::string> from;
    for (std::size_t i = 0; i < inputs.size(); ++i)
        if (const std::int64_t j = first_bad(inputs[i]); j >= 0)
            from.push_back(fmt::format("its input {} already held {}, {}", i, describe_bad(inputs[i], j), origin(inputs[i])));
    msg += from.empty() ? " from finite inputs" : fmt::format("; {}", fmt::join(from, "; "));
    throw AnomalyError(msg, op.name, path, false);
}

// Forward check of one op's output (anomaly mode only). NaN is always reported: it is never
// intended, and an earlier op would have been reported first had it come from one. An infinity is
// reported where it first appears: not when an input already held one (it is passing through),
// nor from an op that writes infinities on purpose.
void check_forward(const OpDef& op, const Tensor& out, const std::vector<Tensor>& inputs) {
    const std::int64_t bad = first_bad(out);
    if (bad < 0) return;
    const bool nan = has_nan(out);
    if (!nan) {
        if (op.makes_infinities) return;
        for (const Tensor& in : inputs)
            if (first_bad(in) >= 0) return;
    }
    if (nan) {
        // Report at the first NaN, not at an infinity before it.
        const std::int64_t first_nan = detail::visit_float(out.dtype(), "anomaly", [&]<class T>(T) {
            const T* p = out.data<T>();
            std::int64_t i = 0;
            while (!std::isnan(p[i])) ++i;
            return i;
        });
        report_forward(op, out, first_nan, inputs);
    }
    report_forward(op, out, bad, inputs);
}

}  // namespace

// ---- recording ----------------------------------------------------------------------------------

Tensor record(const OpDef& op, Tensor out, std::vector<Tensor> inputs, BackwardFn backward) {
    if (g_anomaly) [[unlikely]]
        check_forward(op, out, inputs);
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
    if (g_anomaly) [[unlikely]] {  // where the op ran, for a report from its backward
        Node& recorded = *out.impl()->grad_fn;
        recorded.scope = g_scope ? g_scope->scope_path() : "";
        recorded.in_scope = g_scope != nullptr;
    }
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

// Backward check of one node (anomaly mode only), after it ran: the gradients it added to must
// still be finite. They were before (the node before it was checked the same way, and dL/dy was
// checked at the root), so a non-finite value here was made by this node's backward.
void check_backward(Node& node) {
    for (std::size_t i = 0; i < node.inputs.size(); ++i) {
        const Tensor& in = node.inputs[i];
        if (!in.defined() || !in.requires_grad()) continue;
        const Tensor& g = grad_slot(in);
        if (const std::int64_t bad = first_bad(g); bad >= 0)
            throw AnomalyError(fmt::format("anomaly: the backward of '{}' (recorded {}) produced {} in the gradient of its "
                                           "input {}, from a finite upstream gradient",
                                           node.op->name, where(node.scope, node.in_scope), describe_bad(g, bad), i),
                               node.op->name, node.scope, true);
    }
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
    if (g_anomaly) [[unlikely]]
        check_backward(node);
}
}  // namespace

std::vector<std::string> graph_ops(const Tensor& t) {
    std::vector<std::string> names;
    if (!t.defined() || !t.grad_fn()) return names;
    for (Node* n : topo_order(t.grad_fn().get())) names.emplace_back(n->op->name);
    return names;
}

// ---- backward -------------------------------------------------------------------------------------

void Tensor::backward(bool retain_graph) const {
    if (!defined()) fail("backward: called on an undefined tensor");
    if (numel() != 1)
        fail("backward: output has shape {} ({} elements); pass a gradient of that shape, or reduce it "
             "to a scalar first (e.g. qkv::sum)", shape_str(shape()), numel());
    backward(ones_like(*this), retain_graph);
}

void Tensor::backward(const Tensor& grad_output, bool retain_graph) const {
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
    const std::vector<Node*> order = topo_order(root);
    // A node whose backward already ran without retain_graph has freed what it saved: running
    // through it again would silently add a second copy of every gradient (or read freed values).
    // Checked before anything runs, so a refused backward changes no gradient.
    for (Node* node : order)
        if (!node->backward)
            fail("backward: trying to backward through the graph a second time (the first backward freed the "
                 "values '{}' saved for it); call backward(/*retain_graph=*/true) the first time if you need to "
                 "backward twice, or recompute the forward pass",
                 node->op->name);
    if (g_anomaly) [[unlikely]]
        if (const std::int64_t bad = first_bad(grad_output); bad >= 0)
            throw AnomalyError(fmt::format("anomaly: backward was given a gradient that holds {}", describe_bad(grad_output, bad)),
                               root->op->name, root->scope, true);
    accumulate(root->grad, grad_output);
    // Releasing a node's backward frees only what its closure saved; the node itself lives on (it
    // is owned through the inputs of the nodes after it), so the pointers in `order` stay valid.
    for (Node* node : order) {
        if (!node->grad.defined()) continue;  // no gradient reached this node
        run_node(*node);
        node->grad = Tensor();  // release dL/dy: it is no longer needed
        if (!retain_graph) node->backward = nullptr;  // and what the forward saved for this backward
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
