/// \file
/// \brief Pictures without a plotting library: training curves and attention heatmaps as SVG
/// files, and heatmaps as coloured text in the terminal.
///
/// SVG is just text — rectangles, lines and labels with coordinates — so a few dozen lines of code
/// draw everything qkv needs, and the result opens in any browser.
#pragma once

#include <string>
#include <vector>

#include "qkv/core/tensor.hpp"

namespace qkv::viz {

/// One line of a chart.
struct Series {
    std::string name;        ///< legend label
    std::vector<double> y;   ///< values, one per x
    bool right_axis = false; ///< plot against the right-hand axis (e.g. accuracy in [0, 1])
};

/// \brief Write a line chart as SVG: \p x against each series; left axis for the series with
/// right_axis = false (log scale when \p log_left), right axis for the others. The x axis has round,
/// distinct tick labels, also for a single x value. Values that cannot be drawn (NaN, or ≤ 0 on a
/// log axis) are skipped and the line joins the rest; a series of at most 20 points also gets a dot
/// at each point, so that a single point shows.
/// \param path output file \param title chart title \param x shared x values (e.g. steps)
/// \param series the lines \param log_left logarithmic left axis (losses)
void write_line_chart(const std::string& path, const std::string& title, const std::vector<double>& x,
                      const std::vector<Series>& series, bool log_left = true);

/// One heatmap panel: a matrix with labelled rows and columns.
struct Heatmap {
    std::string title;                 ///< e.g. "layer 0, head 1"
    Tensor values;                     ///< (rows, cols), values in [0, 1] (others clamped; NaN marked)
    std::vector<std::string> rows;     ///< row labels (queries)
    std::vector<std::string> cols;     ///< column labels (keys)
};

/// \brief Write heatmaps side by side (wrapping every \p per_row panels) as one SVG file. Cells
/// shade from white (0) to dark blue (1); values outside [0, 1], ±inf included, are clamped, and
/// NaN is drawn as a grey cell that is not on the scale (its tooltip says nan).
/// \param path output file \param panels the heatmaps \param per_row panels per row
void write_heatmaps(const std::string& path, const std::vector<Heatmap>& panels, int per_row = 4);

/// \brief A heatmap as text with 256-colour ANSI backgrounds (darker = smaller), one cell per
/// value, row and column labels included. \param h the heatmap \param color use ANSI colours
/// (a grey ramp: brighter = larger; otherwise digits 0–9 stand for the value). Values outside
/// [0, 1], ±inf included, are clamped; NaN is shown as `?` (on a red background with colour).
/// \return the text: the title line, a line of column labels, then one line per row, each ending
/// in a newline
std::string terminal_heatmap(const Heatmap& h, bool color = true);

/// \brief Escape text for SVG or HTML: `<`, `>`, `&` and `"` become entities, so a title or a
/// token that contains them is shown as written and cannot end an element or an attribute.
/// \param s the text
/// \return the text, safe inside an element or a double-quoted attribute
std::string escape_markup(const std::string& s);

}  // namespace qkv::viz
