/// \file
/// \brief SVG line charts and heatmaps, and terminal heatmaps.
///
/// A reader learns here that charts need no plotting library: SVG is plain text, so a line chart is a
/// frame, tick labels and one `<polyline>` per series, and a heatmap is a grid of `<rect>` cells shaded
/// from white (0) to dark blue (1), each with a `<title>` tooltip holding its value; values outside
/// [0, 1] are clamped, and NaN, which has no shade, is drawn grey. The line chart has two y axes, loss
/// on the left (optionally log scale) and accuracy in [0, 1] on the right, because a training curve
/// needs both. terminal_heatmap() draws the same matrices with ANSI grey backgrounds, or digits 0–9
/// without colour (NaN as `?`). Text is XML-escaped; files are written atomically.
#include "qkv/viz/plot.hpp"

#include <algorithm>
#include <cmath>

#include "qkv/io/file.hpp"

namespace qkv::viz {

namespace {

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"};
const char* kNanColor = "rgb(150,150,150)";  // a neutral grey: the blue scale never reaches it

// A colour from white (0) to dark blue (1); values outside [0, 1], infinities included, are clamped.
// NaN has no place on the scale (and int(NaN) is undefined), so it gets a grey found nowhere on it.
std::string heat_color(double v) {
    if (std::isnan(v)) return kNanColor;
    v = std::clamp(v, 0.0, 1.0);
    const int r = int(255 - 230 * v), g = int(255 - 200 * v), b = int(255 - 100 * v);
    return fmt::format("rgb({},{},{})", r, g, b);
}

// Tick marks for an axis from lo to hi: a round spacing (1, 2, 2.5 or 5 times a power of ten)
// giving at most about eight ticks, and the axis widened to whole multiples of it, so that labels
// are round and distinct. A single value (lo == hi) gets an axis around it.
struct Ticks {
    double first, step;  // the first tick and the spacing
    int count;           // number of ticks
    int decimals;        // digits after the point that tell the labels apart
};
Ticks nice_ticks(double lo, double hi) {
    if (!(hi > lo)) {
        const double pad = std::max(1.0, std::abs(lo) * 0.05);
        lo -= pad, hi += pad;
    }
    const double raw = (hi - lo) / 8, magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    double step = 10 * magnitude, mantissa = 10;
    for (const double m : {1.0, 2.0, 2.5, 5.0})
        if (m * magnitude >= raw) {
            step = m * magnitude, mantissa = m;
            break;
        }
    const double first = std::floor(lo / step) * step, last = std::ceil(hi / step) * step;
    const int count = int(std::lround((last - first) / step)) + 1;
    const int decimals = std::max(0, -int(std::floor(std::log10(step) + 1e-9)) + (mantissa == 2.5 ? 1 : 0));
    return {first, step, count, decimals};
}

}  // namespace

std::string escape_markup(const std::string& s) {
    std::string out;
    for (const char c : s) {
        if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else if (c == '&') out += "&amp;";
        else if (c == '"') out += "&quot;";
        else out += c;
    }
    return out;
}

void write_line_chart(const std::string& path, const std::string& title, const std::vector<double>& x,
                      const std::vector<Series>& series, bool log_left) {
    if (x.empty()) fail("write_line_chart: no points to plot");
    for (const auto& s : series)
        if (s.y.size() != x.size()) fail("write_line_chart: series '{}' has {} values for {} x values", s.name, s.y.size(), x.size());
    const double W = 720, H = 420, L = 70, R = 70, T = 40, B = 50;
    const Ticks xt = nice_ticks(*std::min_element(x.begin(), x.end()), *std::max_element(x.begin(), x.end()));
    const double x0 = xt.first, x1 = xt.first + xt.step * (xt.count - 1);
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& s : series)
        if (!s.right_axis)
            for (double v : s.y)
                if (std::isfinite(v) && (!log_left || v > 0)) lo = std::min(lo, v), hi = std::max(hi, v);
    if (!(lo < hi)) lo = (std::isfinite(lo) ? lo : 1) / 2, hi = (std::isfinite(hi) ? hi : 1) * 2;
    auto tx = [&](double v) { return L + (v - x0) / (x1 - x0) * (W - L - R); };
    auto ty_left = [&](double v) {
        const double f = log_left ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) : (v - lo) / (hi - lo);
        return H - B - f * (H - T - B);
    };
    auto ty_right = [&](double v) { return H - B - std::clamp(v, 0.0, 1.0) * (H - T - B); };
    std::string svg = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n"
        "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"24\" font-size=\"15\" text-anchor=\"middle\">{}</text>\n",
        W, H, W / 2, escape_markup(title));
    svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\n", L, T, W - L - R, H - T - B);
    for (int i = 0; i < xt.count; ++i) {  // x ticks: round values, distinct labels
        const double xv = xt.first + xt.step * i;
        svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{:.{}f}</text>\n", tx(xv), H - B + 18, xv,
                           xt.decimals);
    }
    for (int i = 0; i <= 4; ++i) {  // y ticks: left, right
        const double f = i / 4.0;
        const double lv = log_left ? std::pow(10, std::log10(lo) + f * (std::log10(hi) - std::log10(lo))) : lo + f * (hi - lo);
        svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.3g}</text>\n", L - 6, ty_left(lv) + 4, lv);
        svg += fmt::format("<text x=\"{}\" y=\"{}\">{:.0f}%</text>\n", W - R + 6, ty_right(f) + 4, f * 100);
    }
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">step</text>\n", (L + W - R) / 2, H - 12);
    for (std::size_t k = 0; k < series.size(); ++k) {
        const auto& s = series[k];
        // Points that cannot be drawn (NaN: e.g. no evaluation at that step; ≤ 0 on a log axis) are
        // skipped, and the line joins the others.
        std::vector<std::pair<double, double>> pts;
        for (std::size_t i = 0; i < x.size(); ++i) {
            const double v = s.y[i];
            if (!std::isfinite(v) || (!s.right_axis && log_left && v <= 0)) continue;
            pts.emplace_back(tx(x[i]), s.right_axis ? ty_right(v) : ty_left(v));
        }
        const char* c = kColors[k % 5];
        std::string line;
        for (const auto& [px, py] : pts) line += fmt::format("{:.1f},{:.1f} ", px, py);
        svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n", c, line);
        // A line needs two points; a series with few points also gets a dot at each, so a single
        // evaluation still shows.
        if (pts.size() <= 20)
            for (const auto& [px, py] : pts)
                svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", px, py, c);
        svg += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"{}\">{}{}</text>\n", L + 10, T + 18 + 16 * double(k), c,
                           escape_markup(s.name), s.right_axis ? " (right axis)" : "");
    }
    io::write_text_file(path, svg + "</svg>\n", "plot");
}

void write_heatmaps(const std::string& path, const std::vector<Heatmap>& panels, int per_row) {
    if (panels.empty()) fail("write_heatmaps: no panels");
    if (per_row < 1) fail("write_heatmaps: per_row must be >= 1");
    const double cell = 18, pad = 40;
    std::int64_t maxr = 0, maxc = 0;
    for (const auto& p : panels) {
        if (!p.values.defined() || p.values.dim() != 2) fail("write_heatmaps: panel '{}' is not a matrix", p.title);
        maxr = std::max(maxr, p.values.size(0));
        maxc = std::max(maxc, p.values.size(1));
    }
    const double pw = double(maxc) * cell + 2 * pad, ph = double(maxr) * cell + 2 * pad;
    const int cols = std::min<int>(per_row, int(panels.size()));
    const int rows = (int(panels.size()) + per_row - 1) / per_row;
    std::string svg = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"monospace\" font-size=\"11\">\n"
        "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        pw * cols, ph * rows);
    for (std::size_t k = 0; k < panels.size(); ++k) {
        const auto& p = panels[k];
        const double ox = pw * double(int(k) % per_row) + pad, oy = ph * double(int(k) / per_row) + pad;
        svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"13\">{}</text>\n", ox, oy - 22, escape_markup(p.title));
        const auto v = p.values.to_vector<double>();
        const std::int64_t R = p.values.size(0), C = p.values.size(1);
        for (std::int64_t i = 0; i < R; ++i) {
            if (std::size_t(i) < p.rows.size())
                svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", ox - 4, oy + cell * double(i) + 13,
                                   escape_markup(p.rows[std::size_t(i)]));
            for (std::int64_t j = 0; j < C; ++j)
                svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{:.3f}</title></rect>\n",
                                   ox + cell * double(j), oy + cell * double(i), cell, cell, heat_color(v[std::size_t(i * C + j)]),
                                   v[std::size_t(i * C + j)]);
        }
        for (std::int64_t j = 0; j < C && std::size_t(j) < p.cols.size(); ++j)
            svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", ox + cell * (double(j) + 0.5), oy - 6,
                               escape_markup(p.cols[std::size_t(j)]));
    }
    io::write_text_file(path, svg + "</svg>\n", "plot");
}

std::string terminal_heatmap(const Heatmap& h, bool color) {
    if (!h.values.defined() || h.values.dim() != 2) fail("terminal_heatmap: '{}' is not a matrix", h.title);
    const auto v = h.values.to_vector<double>();
    const std::int64_t R = h.values.size(0), C = h.values.size(1);
    std::size_t lw = 0;
    for (const auto& r : h.rows) lw = std::max(lw, r.size());
    std::string out = h.title + "\n" + std::string(lw + 1, ' ');
    for (std::int64_t j = 0; j < C; ++j) out += fmt::format("{:>2}", std::size_t(j) < h.cols.size() ? h.cols[std::size_t(j)] : "");
    out += "\n";
    for (std::int64_t i = 0; i < R; ++i) {
        out += fmt::format("{:>{}} ", std::size_t(i) < h.rows.size() ? h.rows[std::size_t(i)] : "", lw);
        for (std::int64_t j = 0; j < C; ++j) {
            if (std::isnan(v[std::size_t(i * C + j)])) {  // off the scale: a '?' (on red, with colour)
                out += color ? "\033[48;5;196m ?\033[0m" : " ?";
                continue;
            }
            const double x = std::clamp(v[std::size_t(i * C + j)], 0.0, 1.0);  // ±inf clamp to 0 or 1
            if (color) out += fmt::format("\033[48;5;{}m  \033[0m", 232 + int(std::lround(x * 23)));  // grey ramp
            else out += fmt::format("{:>2}", std::min(9, int(x * 10)));
        }
        out += "\n";
    }
    return out;
}

}  // namespace qkv::viz
