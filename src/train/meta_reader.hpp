/// \file
/// \brief MetaReader: a checkpoint's metadata strings read back as checked numbers (private to the
/// train layer: text.cpp and import.cpp).
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "qkv/core/tensor.hpp"  // parse_double_prefix
#include "qkv/error.hpp"
#include "qkv/io/safetensors.hpp"
#include "qkv/nn/transformer.hpp"

namespace qkv::detail {

/// \brief Metadata strings in, checked numbers out: each getter throws qkv::Error naming the file
/// (the context given) and the key when the entry is missing, malformed or out of range. Doubles are
/// written in fmt's shortest round-trip form and read back exactly, so settings survive the trip
/// through text bit for bit.
class MetaReader {
public:
    /// \param m the metadata \param ctx the file, for messages (e.g. "'run.safetensors'")
    MetaReader(const io::Metadata& m, std::string ctx) : m_(m), ctx_(std::move(ctx)) {}
    /// \param key the entry \return whether the metadata has it
    bool has(const std::string& key) const { return m_.count(key) != 0; }
    /// \param key the entry \return its text
    const std::string& str(const std::string& key) const {
        const auto it = m_.find(key);
        if (it == m_.end()) fail("{}: metadata '{}' is missing", ctx_, key);
        return it->second;
    }
    /// \param key the entry \param lo smallest allowed \param hi largest allowed \return its value
    std::int64_t integer(const std::string& key, std::int64_t lo, std::int64_t hi) const {
        const std::string& s = str(key);
        std::int64_t v = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc() || end != s.data() + s.size())
            fail("{}: metadata '{}' is not an integer: \"{}\"", ctx_, key, s.substr(0, 40));
        if (v < lo || v > hi) fail("{}: metadata '{}' is {}, outside [{}, {}]", ctx_, key, v, lo, hi);
        return v;
    }
    /// \param key the entry \return its value, any unsigned 64-bit integer
    std::uint64_t unsigned_integer(const std::string& key) const {
        const std::string& s = str(key);
        std::uint64_t v = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc() || end != s.data() + s.size())
            fail("{}: metadata '{}' is not an integer: \"{}\"", ctx_, key, s.substr(0, 40));
        return v;
    }
    /// \param key the entry \return its value, finite
    double real(const std::string& key) const {
        const std::string& s = str(key);
        double v = 0;
        const bool whole = !s.empty() && parse_double_prefix(s, v) == s.size();
        if (!whole || !std::isfinite(v))
            fail("{}: metadata '{}' is not a number: \"{}\"", ctx_, key, s.substr(0, 40));
        return v;
    }
    /// \return the file, as given for messages
    const std::string& context() const { return ctx_; }

private:
    const io::Metadata& m_;
    std::string ctx_;
};

/// \brief GPT-2's three options, where gpt_metadata() writes them only when set: `model.tanh_gelu`
/// and `model.tie_weights` (0 or 1, absent = 0) and `model.ln_eps` (in (0, 1), absent = 1e-5).
/// \param m the checkpoint's metadata \param g the configuration to complete
inline void read_gpt_options(const MetaReader& m, nn::GPTConfig& g) {
    g.tanh_gelu = m.has("model.tanh_gelu") && m.integer("model.tanh_gelu", 0, 1) == 1;
    g.tie_weights = m.has("model.tie_weights") && m.integer("model.tie_weights", 0, 1) == 1;
    g.ln_eps = m.has("model.ln_eps") ? m.real("model.ln_eps") : 1e-5;
    if (!(g.ln_eps > 0 && g.ln_eps < 1))
        fail("{}: metadata 'model.ln_eps' must be in (0, 1), got {}", m.context(), g.ln_eps);
}

}  // namespace qkv::detail
