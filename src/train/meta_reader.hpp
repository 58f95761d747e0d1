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

private:
    const io::Metadata& m_;
    std::string ctx_;
};

}  // namespace qkv::detail
