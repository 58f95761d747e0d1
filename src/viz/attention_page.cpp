/// \file
/// \brief The attention page: weights checked and embedded as JSON, drawn by an inline script.
///
/// A reader learns here how to hand data to a browser safely. The weights go into a
/// `<script type="application/json">` block, which the browser does not run; the page's own script
/// parses it with `JSON.parse` and builds the heatmaps with DOM calls, setting token labels as text,
/// never as HTML, so no token can break the page. Inside that block the one thing that must never
/// appear is `</script>`, so every `<` (and, for good measure, `>` and `&`) in a string is written
/// as a `\u` escape. JSON has no NaN: a NaN weight becomes `null` and is drawn grey. The page is
/// written atomically, like every file qkv saves.
#include "qkv/viz/attention_page.hpp"

#include <cmath>

#include "qkv/error.hpp"
#include "qkv/io/file.hpp"
#include "qkv/viz/plot.hpp"

namespace qkv::viz {

namespace {

// A JSON string literal: quotes, backslashes and control characters escaped, and <, >, & as \u
// escapes so the text can sit inside a <script> element.
void append_json_string(std::string& out, const std::string& s) {
    out += '"';
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"') out += "\\\"";
        else if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (c < 0x20 || c == '<' || c == '>' || c == '&') out += fmt::format("\\u{:04x}", c);
        else out += ch;  // UTF-8 bytes pass through unchanged
    }
    out += '"';
}

// The checks of attention_page(): shapes agree with the tokens, and every example has the same
// layers × heads (the page's grid).
void check(const std::vector<AttentionExample>& examples) {
    if (examples.empty()) fail("attention_page: no examples");
    const std::size_t layers = examples[0].layers.size();
    const Tensor& first = layers ? examples[0].layers[0] : Tensor();
    const std::int64_t heads = first.defined() && first.dim() == 3 ? first.size(0) : 0;
    for (std::size_t e = 0; e < examples.size(); ++e) {
        const auto& ex = examples[e];
        if (ex.layers.empty()) fail("attention_page: example {} ('{}') has no layers", e, ex.label);
        if (ex.tokens.empty()) fail("attention_page: example {} ('{}') has no tokens", e, ex.label);
        if (ex.layers.size() != layers)
            fail("attention_page: example {} has {} layers, example 0 has {}", e, ex.layers.size(), layers);
        const auto T = std::int64_t(ex.tokens.size());
        for (std::size_t l = 0; l < ex.layers.size(); ++l) {
            const Tensor& w = ex.layers[l];
            if (!w.defined() || w.dim() != 3 || w.size(1) != T || w.size(2) != T)
                fail("attention_page: example {}, layer {}: expected weights (H, {}, {}) for its {} tokens, got {}", e, l, T,
                     T, T, w.defined() ? shape_str(w.shape()) : "undefined");
            if (w.size(0) < 1) fail("attention_page: example {}, layer {} has no heads", e, l);
            if (w.size(0) != heads)
                fail("attention_page: example {}, layer {} has {} heads, example 0's layer 0 has {}", e, l, w.size(0), heads);
        }
    }
}

// The page's style and script. (Raw strings end at the first `)"`, so the script writes such
// strings with single quotes.) The script reads the JSON, fills the menu, and draws one <figure
// class="heatmap"> per layer and head: an SVG grid with the key tokens along the top and the query
// tokens down the left. Moving the mouse over a cell writes its weight into the read-out line.
constexpr const char* kStyle = R"(
body { font-family: sans-serif; margin: 0 16px 16px; color: #222; }
header { position: sticky; top: 0; background: #fff; padding: 8px 0; border-bottom: 1px solid #ccc; }
h1 { font-size: 18px; margin: 4px 0 8px; }
#readout { font-family: monospace; font-size: 14px; margin-top: 6px; min-height: 1.3em; }
.help { font-size: 13px; color: #555; margin: 8px 0 0; }
.scale { display: inline-block; width: 120px; height: 10px; vertical-align: middle;
         background: linear-gradient(to right, rgb(255,255,255), rgb(25,55,155)); border: 1px solid #999; }
section.layer h2 { font-size: 15px; margin: 14px 0 4px; }
.heads { display: flex; flex-wrap: wrap; gap: 18px; }
figure.heatmap { margin: 0; }
figure.heatmap figcaption { font-size: 13px; margin-bottom: 2px; }
svg text { font-family: monospace; fill: #333; }
rect.cell:hover { stroke: #d62728; stroke-width: 2; }
)";

constexpr const char* kScript = R"(
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("qkv-data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  const select = document.getElementById("example");
  const maps = document.getElementById("maps");
  const readout = document.getElementById("readout");

  // White (0) to dark blue (1), as the SVG heatmaps of `qkv attention`; grey for a missing value.
  function color(w) {
    if (w === null) return 'rgb(150,150,150)';
    const v = Math.min(1, Math.max(0, w));
    return `rgb(${Math.round(255 - 230 * v)},${Math.round(255 - 200 * v)},${Math.round(255 - 100 * v)})`;
  }
  function svgElement(name, attributes) {
    const e = document.createElementNS(NS, name);
    for (const key in attributes) e.setAttribute(key, attributes[key]);
    return e;
  }

  // One head's weights w (row-major T × T) as an SVG grid; tokens along the top and down the left.
  function heatmap(tokens, w, layer, head) {
    const T = tokens.length;
    const cell = Math.max(6, Math.min(18, Math.floor(400 / T)));
    const font = Math.max(7, Math.min(12, cell - 2));
    const margin = 6 + font * Math.max(...tokens.map(t => t.length));
    const svg = svgElement("svg", { width: margin + T * cell + 2, height: margin + T * cell + 2, role: "img",
                                    "aria-label": "layer " + layer + ", head " + head });
    for (let j = 0; j < T; ++j) {  // key labels
      const x = margin + (j + 0.5) * cell, label = svgElement("text", { x: x, y: margin - 4, "font-size": font,
                                                                        "text-anchor": "middle" });
      label.textContent = tokens[j];
      svg.appendChild(label);
    }
    for (let i = 0; i < T; ++i) {
      const label = svgElement("text", { x: margin - 4, y: margin + (i + 0.75) * cell, "font-size": font,
                                         "text-anchor": "end" });
      label.textContent = tokens[i];  // query labels
      svg.appendChild(label);
      for (let j = 0; j < T; ++j) {
        const r = svgElement("rect", { class: "cell", x: margin + j * cell, y: margin + i * cell, width: cell,
                                       height: cell, fill: color(w[i * T + j]) });
        r.dataset.i = i;
        r.dataset.j = j;
        svg.appendChild(r);
      }
    }
    // A frame around the grid: blocked (future) positions have weight 0, as white as the page.
    svg.appendChild(svgElement("rect", { x: margin - 0.5, y: margin - 0.5, width: T * cell + 1, height: T * cell + 1,
                                         fill: "none", stroke: "#bbb" }));
    svg.addEventListener("mouseover", function (event) {
      const r = event.target;
      if (!r.classList.contains("cell")) return;
      const i = Number(r.dataset.i), j = Number(r.dataset.j), v = w[i * T + j];
      readout.textContent = "layer " + layer + ", head " + head + ": query " + i + " '" + tokens[i] + "' looks at key " +
                            j + " '" + tokens[j] + "' with weight " + (v === null ? '(none)' : v.toFixed(3));
    });
    const figure = document.createElement("figure");
    figure.className = "heatmap";
    figure.dataset.layer = layer;
    figure.dataset.head = head;
    const caption = document.createElement("figcaption");
    caption.textContent = "layer " + layer + ", head " + head;
    figure.appendChild(caption);
    figure.appendChild(svg);
    return figure;
  }

  function draw(index) {
    const example = data.examples[index];
    maps.replaceChildren();
    example.layers.forEach(function (heads, layer) {
      const section = document.createElement("section");
      section.className = "layer";
      const title = document.createElement("h2");
      title.textContent = "layer " + layer;
      const row = document.createElement("div");
      row.className = "heads";
      heads.forEach(function (w, head) { row.appendChild(heatmap(example.tokens, w, layer, head)); });
      section.appendChild(title);
      section.appendChild(row);
      maps.appendChild(section);
    });
    readout.textContent = "Move the mouse over a cell to read its weight.";
  }

  data.examples.forEach(function (example, i) {
    const option = document.createElement("option");
    option.value = i;
    option.textContent = example.label;
    select.appendChild(option);
  });
  select.addEventListener("change", function () { draw(Number(select.value)); });
  draw(0);
})();
)";

}  // namespace

std::string attention_page(const std::string& title, const std::vector<AttentionExample>& examples) {
    check(examples);
    // The data: {"examples": [{"label": …, "tokens": […], "layers": [[head 0 (T·T numbers), …], …]}]}
    std::string json = "{\"examples\":[";
    for (std::size_t e = 0; e < examples.size(); ++e) {
        const auto& ex = examples[e];
        json += e ? ",{\"label\":" : "{\"label\":";
        append_json_string(json, ex.label);
        json += ",\"tokens\":[";
        for (std::size_t i = 0; i < ex.tokens.size(); ++i) {
            if (i) json += ',';
            append_json_string(json, ex.tokens[i]);
        }
        json += "],\"layers\":[";
        for (std::size_t l = 0; l < ex.layers.size(); ++l) {
            const std::vector<double> w = ex.layers[l].to_vector<double>();
            const std::size_t per_head = w.size() / std::size_t(ex.layers[l].size(0));
            json += l ? ",[" : "[";
            for (std::size_t k = 0; k < w.size(); ++k) {
                if (k % per_head == 0) json += k ? "],[" : "[";
                else json += ',';
                // Three significant digits are all the read-out shows; NaN has no JSON form.
                json += std::isfinite(w[k]) ? fmt::format("{:.3g}", w[k]) : std::string(std::isnan(w[k]) ? "null" : w[k] > 0 ? "1" : "0");
            }
            json += "]]";
        }
        json += "]}";
    }
    json += "]}";

    const std::string t = escape_markup(title);
    return fmt::format(R"(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{0}</title>
<style>{1}</style>
</head>
<body>
<header>
<h1>{0}</h1>
<label>Input: <select id="example"></select></label>
<p class="help">Each heatmap is one attention head. Row: a query, the position that attends; column: a key, the
position attended to. Each row sums to 1. 0 <span class="scale"></span> 1</p>
<div id="readout"></div>
</header>
<main id="maps"></main>
<noscript>This page draws its heatmaps with JavaScript; please allow scripts for this file.</noscript>
<script type="application/json" id="qkv-data">{2}</script>
<script>{3}</script>
</body>
</html>
)",
                       t, kStyle, json, kScript);
}

void write_attention_page(const std::string& path, const std::string& title, const std::vector<AttentionExample>& examples) {
    io::write_text_file(path, attention_page(title, examples), "attention page");
}

}  // namespace qkv::viz
