// viz: heatmaps in SVG and in the terminal — the scale, clamping, and values off the scale (NaN, ±inf);
// line charts — round, distinct axis labels, and curves of one point or with gaps.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "qkv/qkv.hpp"
#include "qkv/viz/attention_page.hpp"
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

namespace {

// The text of a file, which is then removed.
std::string take_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    std::filesystem::remove(path);
    return ss.str();
}

// The labels under the x axis of a line chart (the text elements on its tick row), in order.
std::vector<std::string> x_tick_labels(const std::string& svg) {
    std::vector<std::string> labels;
    const std::string row = "y=\"388\" text-anchor=\"middle\">";  // H − B + 18 for the 420-high chart
    for (std::size_t pos = svg.find(row); pos != std::string::npos; pos = svg.find(row, pos + 1)) {
        const std::size_t from = pos + row.size();
        labels.push_back(svg.substr(from, svg.find('<', from) - from));
    }
    return labels;
}

// The number of points of each polyline, in order.
std::vector<std::size_t> polyline_points(const std::string& svg) {
    std::vector<std::size_t> out;
    const std::string key = "points=\"";
    for (std::size_t pos = svg.find(key); pos != std::string::npos; pos = svg.find(key, pos + 1)) {
        const std::size_t from = pos + key.size();
        const std::string pts = svg.substr(from, svg.find('"', from) - from);
        out.push_back(count(pts, ","));
    }
    return out;
}

}  // namespace

TEST_CASE("write_line_chart: a single step gets distinct x labels and a visible dot", "[viz][curve]") {
    // What `qkv train` drew when training stopped at its first evaluation: one point, at step 100,
    // and an x axis that read "100 100 100 101 101".
    const auto path = (std::filesystem::temp_directory_path() / ("qkv_test_chart1_" + std::to_string(::getpid()) + ".svg")).string();
    viz::write_line_chart(path, "one point", {100}, {{"loss", {1.35}, false}, {"accuracy", {1.0}, true}});
    const std::string svg = take_file(path);
    const auto labels = x_tick_labels(svg);
    REQUIRE(labels.size() >= 2);
    for (std::size_t i = 1; i < labels.size(); ++i) CHECK(std::stod(labels[i]) > std::stod(labels[i - 1]));
    CHECK(std::find(labels.begin(), labels.end(), "100") != labels.end());
    CHECK(count(svg, "<circle ") == 2);  // one dot per series: a one-point line would draw nothing
}

TEST_CASE("write_line_chart: round x labels, NaN points skipped and joined", "[viz][curve]") {
    const auto path = (std::filesystem::temp_directory_path() / ("qkv_test_chart2_" + std::to_string(::getpid()) + ".svg")).string();
    std::vector<double> steps, loss, acc;
    for (int s = 10; s <= 100; s += 10) {
        steps.push_back(s);
        loss.push_back(2.0 / s);
        acc.push_back(s % 50 == 0 ? s / 100.0 : NAN);  // evaluated at steps 50 and 100 only
    }
    viz::write_line_chart(path, "ten points", steps, {{"loss", loss, false}, {"accuracy", acc, true}});
    const std::string svg = take_file(path);
    CHECK(x_tick_labels(svg) == std::vector<std::string>{"0", "20", "40", "60", "80", "100"});
    CHECK(polyline_points(svg) == std::vector<std::size_t>{10, 2});
    CHECK(count(svg, "<circle ") == 12);  // few points: a dot at each
    CHECK(count(svg, "nan") == 0);
}

TEST_CASE("attention_page: the weights as JSON, safely inside the page", "[viz][html]") {
    // One layer of 2 heads over 2 tokens; a token that would end a <script> block, and a NaN.
    viz::AttentionExample e{"a </script> b", {"</script>", "x"}, {from({1, 0, 0.5, 0.5, 1, 0, NAN, 0.25}, {2, 2, 2}, f64)}};
    const std::string page = viz::attention_page("t & <title>", {e, e});
    CHECK(count(page, "</script>") == 2);  // the page's own two blocks, nothing from the data
    CHECK(count(page, "\\u003c/script\\u003e") == 4);  // label and token of both examples, escaped
    CHECK(count(page, "\"layers\":[[[1,0,0.5,0.5],[1,0,null,0.25]]]") == 2);  // NaN has no JSON form
    CHECK(count(page, "<title>t &amp; &lt;title&gt;</title>") == 1);
    CHECK(count(page, "src=") == 0);   // nothing loaded from elsewhere:
    CHECK(count(page, "href=\"data:,\"") == 1);  // the one link is an empty icon, so no favicon request
    CHECK(count(page, "http") == 1);   // only the SVG namespace name
}

TEST_CASE("attention_page: clear errors for inputs that do not fit", "[viz][html][errors]") {
    const Tensor w = zeros({4, 3, 3});
    CHECK_THROWS_WITH(viz::attention_page("t", {}), Catch::Contains("no examples"));
    CHECK_THROWS_WITH(viz::attention_page("t", {{"e", {"a", "b", "c"}, {}}}), Catch::Contains("has no layers"));
    CHECK_THROWS_WITH(viz::attention_page("t", {{"e", {"a", "b"}, {w}}}),
                      Catch::Contains("expected weights (H, 2, 2) for its 2 tokens, got (4,3,3)"));
    CHECK_THROWS_WITH(viz::attention_page("t", {{"e", {"a", "b", "c"}, {w}}, {"f", {"a", "b", "c"}, {w, w}}}),
                      Catch::Contains("example 1 has 2 layers, example 0 has 1"));
    CHECK_THROWS_WITH(viz::attention_page("t", {{"e", {"a", "b", "c"}, {w}}, {"f", {"a", "b", "c"}, {zeros({2, 3, 3})}}}),
                      Catch::Contains("example 1, layer 0 has 2 heads, example 0's layer 0 has 4"));
}
