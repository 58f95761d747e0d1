/// \file
/// \brief Attention weights as one self-contained HTML page: every layer and head as a heatmap,
/// the weight under the mouse, and a menu to switch between inputs.
///
/// A reader learns here how little a browser needs to show a model's insides: one file with the
/// weights embedded as JSON, a few lines of CSS, and a short script that draws each head as an SVG
/// grid of cells. Nothing is fetched from anywhere — no script, style sheet or font — so the page
/// works offline and can be mailed around. `qkv attention --html FILE` writes it.
#pragma once

#include <string>
#include <vector>

#include "qkv/core/tensor.hpp"

namespace qkv::viz {

/// One input shown on the page: its tokens and the attention weights of every layer on it.
struct AttentionExample {
    std::string label;                ///< the input's line in the page's menu, e.g. "1234 → 4321 (right)"
    std::vector<std::string> tokens;  ///< one label per position (the queries and the keys alike)
    /// Per layer, the weights of all its heads, (H, T, T): row = query (the position that attends),
    /// column = key (the position attended to); T = tokens.size(). Values in [0, 1]; NaN is shown grey.
    std::vector<Tensor> layers;
};

/// \brief The HTML page: a menu of the \p examples, and for the one selected a heatmap per layer and
/// head (tokens on both axes), with the weight under the mouse shown above them. Self-contained:
/// inline CSS and JavaScript, the weights as JSON, no external resource. Throws qkv::Error when
/// \p examples is empty, an example has no layers, a layer is not (H, T, T) with T = tokens.size(),
/// or the examples differ in their number of layers or heads.
/// \param title the page's title \param examples the inputs, shown first to last in the menu
/// \return the page, as UTF-8 text
std::string attention_page(const std::string& title, const std::vector<AttentionExample>& examples);

/// \brief Write attention_page() to \p path, atomically (a temporary file, then a rename).
/// \param path the file to write \param title the page's title \param examples the inputs
void write_attention_page(const std::string& path, const std::string& title, const std::vector<AttentionExample>& examples);

}  // namespace qkv::viz
