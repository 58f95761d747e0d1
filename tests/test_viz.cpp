// viz: heatmaps in SVG and in the terminal — the scale, clamping, and values off the scale (NaN, ±inf).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "qkv/qkv.hpp"
#include "qkv/viz/plot.hpp"

using namespace qkv;

namespace {

std::size_t count(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
    return n;
}

// A 1 x 5 heatmap: NaN, +inf, -inf, 0.5 and 2 (above the scale).
viz::Heatmap off_scale() {
    return viz::Heatmap{"h", from({NAN, INFINITY, -INFINITY, 0.5, 2}, {1, 5}, f64), {"r"}, {"a", "b", "c", "d", "e"}};
}

}  // namespace

TEST_CASE("terminal_heatmap digits: NaN is '?', infinities and values outside [0, 1] are clamped", "[viz]") {
    const auto h = viz::Heatmap{"t", from({0, 0.25, 0.99, 1}, {2, 2}), {"x", "y"}, {"p", "q"}};
    CHECK(viz::terminal_heatmap(h, false) == "t\n   p q\nx  0 2\ny  9 9\n");
    // NaN used to reach int(NaN), which is undefined behaviour
    CHECK(viz::terminal_heatmap(off_scale(), false) == "h\n   a b c d e\nr  ? 9 0 5 9\n");
}

TEST_CASE("terminal_heatmap colours: NaN is a '?' on red, off the grey ramp", "[viz]") {
    const std::string out = viz::terminal_heatmap(off_scale(), true);
    CHECK(count(out, "\033[48;5;196m ?\033[0m") == 1);  // the NaN
    CHECK(count(out, "\033[48;5;255m  \033[0m") == 2);  // +inf and 2 clamp to 1: the brightest grey
    CHECK(count(out, "\033[48;5;232m  \033[0m") == 1);  // -inf clamps to 0: the darkest
}

TEST_CASE("write_heatmaps draws NaN as a grey cell off the blue scale", "[viz]") {
    const auto path = (std::filesystem::temp_directory_path() / ("qkv_test_viz_" + std::to_string(::getpid()) + ".svg")).string();
    viz::write_heatmaps(path, {off_scale()});
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string svg = ss.str();
    std::filesystem::remove(path);
    CHECK(count(svg, "<rect x=") == 5);
    CHECK(count(svg, "fill=\"rgb(150,150,150)\"><title>nan</title>") == 1);
    CHECK(count(svg, "fill=\"rgb(25,55,155)\"><title>inf</title>") == 1);     // +inf: the darkest blue
    CHECK(count(svg, "fill=\"rgb(255,255,255)\"><title>-inf</title>") == 1);  // -inf: white
    CHECK(count(svg, "fill=\"rgb(25,55,155)\"><title>2.000</title>") == 1);   // above 1: clamped
}
