/// \file
/// \brief Printing tensors in PyTorch's layout: nested brackets, aligned columns, summarised middles.
///
/// A reader learns here how to_string() (which the fmt formatter for Tensor calls) lays a tensor out
/// like PyTorch: one pair of brackets per dimension, each row on its own line, blank lines between
/// slices of 3-d and higher tensors, and every value padded to the widest so columns line up. Two
/// passes make that work: the first picks the format (4 decimals, or scientific when a magnitude is
/// ≥ 1e5 or < 1e-4) and the width, the second prints. Above 1000 elements each long dimension shows
/// only its first and last 3 entries around `...`. A dtype other than f32 and the grad_fn follow.
#include <cmath>

#include "core/dispatch.hpp"
#include "qkv/core/autograd.hpp"

namespace qkv {
namespace {

constexpr std::int64_t kSummarizeAbove = 1000;  // elements; larger tensors print "..." in long dims
constexpr std::int64_t kEdgeItems = 3;          // items shown at each end of a summarised dim

struct Printer {
    const Tensor& t;
    bool summarize;
    std::string fmt_spec;  // how one value is formatted
    int width = 0;         // widest formatted value, for alignment

    // Indices of dimension d to show: all of them, or the first and last kEdgeItems (−1 = "...").
    std::vector<std::int64_t> shown(std::int64_t n) const {
        std::vector<std::int64_t> idx;
        if (!summarize || n <= 2 * kEdgeItems) {
            for (std::int64_t i = 0; i < n; ++i) idx.push_back(i);
        } else {
            for (std::int64_t i = 0; i < kEdgeItems; ++i) idx.push_back(i);
            idx.push_back(-1);
            for (std::int64_t i = n - kEdgeItems; i < n; ++i) idx.push_back(i);
        }
        return idx;
    }

    std::string value(std::int64_t flat) const {
        return detail::visit_all(t.dtype(), [&]<class T>(T) -> std::string {
            const T v = t.data<T>()[flat];
            if constexpr (std::is_same_v<T, std::uint8_t>) return v ? "true" : "false";
            else if constexpr (std::is_integral_v<T>) return fmt::format("{}", v);
            else return fmt::format(fmt::runtime(fmt_spec), v);
        });
    }

    // Visit every shown element (for the width pass).
    void each_shown(std::int64_t d, std::int64_t base, const std::function<void(std::int64_t)>& f) const {
        if (d == t.dim()) return f(base);
        for (auto i : shown(t.shape()[std::size_t(d)]))
            if (i >= 0) each_shown(d + 1, base * t.shape()[std::size_t(d)] + i, f);
    }

    void print(std::int64_t d, std::int64_t base, std::string& out, int indent) const {
        if (d == t.dim()) {
            out += fmt::format("{:>{}}", value(base), width);
            return;
        }
        out += '[';
        const auto n = t.shape()[std::size_t(d)];
        const auto idx = shown(n);
        const bool last_dim = d + 1 == t.dim();
        for (std::size_t k = 0; k < idx.size(); ++k) {
            if (k > 0) {
                out += ',';
                if (last_dim) out += ' ';
                else out += std::string(std::size_t(t.dim() - d - 1), '\n') + std::string(std::size_t(indent + 1), ' ');
            }
            if (idx[k] < 0) out += "...";
            else print(d + 1, base * n + idx[k], out, indent + 1);
        }
        out += ']';
    }
};

// Fixed-point with 4 decimals reads best; switch to scientific when values are huge or tiny.
std::string choose_format(const Tensor& t, const Printer& p) {
    if (!is_floating(t.dtype())) return "";
    double lo = INFINITY, hi = 0;
    p.each_shown(0, 0, [&](std::int64_t i) {
        const double v = std::fabs(detail::visit_float(t.dtype(), "print", [&]<class T>(T) { return double(t.data<T>()[i]); }));
        if (!std::isfinite(v)) return;
        hi = std::max(hi, v);
        if (v > 0) lo = std::min(lo, v);
    });
    return hi >= 1e5 || lo < 1e-4 ? "{:.4e}" : "{:.4f}";
}

}  // namespace

std::string to_string(const Tensor& t) {
    if (!t.defined()) return "tensor(undefined)";
    Printer p{t, t.numel() > kSummarizeAbove, "", 0};
    p.fmt_spec = choose_format(t, p);
    std::string out = "tensor(";
    if (t.numel() == 0) {
        out += fmt::format("[], shape={}", shape_str(t.shape()));
    } else {
        p.each_shown(0, 0, [&](std::int64_t i) { p.width = std::max(p.width, int(p.value(i).size())); });
        p.print(0, 0, out, 7);  // 7 = strlen("tensor(")
    }
    if (t.dtype() != DType::f32) out += fmt::format(", dtype={}", dtype_name(t.dtype()));
    if (t.requires_grad()) out += t.grad_fn() ? fmt::format(", grad_fn={}", t.grad_fn()->op->name) : ", requires_grad";
    return out + ")";
}

}  // namespace qkv
