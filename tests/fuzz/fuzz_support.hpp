/// \file
/// \brief What the fuzz targets share: giving a mutated qkv file a correct checksum again, so that
/// the fuzzer gets past the CRC-32 into the code behind it.
///
/// A random mutation of a file written by qkv almost always breaks its CRC-32, and the reader then
/// stops at the checksum — the one check the unit tests already cover bit by bit. So before a
/// target parses its input it recomputes the checksum the way the writer does (over the whole file
/// with "00000000" in place of the digits) and writes it in, when the input has a `"qkv.crc32":"…"`
/// with 8 digits where a qkv writer puts it. Inputs without one are parsed as they are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "io/io_detail.hpp"

namespace qkv::fuzz {

/// \brief \p bytes with its `qkv.crc32` digits recomputed, if it has them.
/// \param bytes a (mutated) safetensors file
/// \return the same bytes, with a valid checksum where one was present
inline std::string with_valid_crc(std::string bytes) {
    const std::string key = "\"qkv.crc32\":\"";
    if (bytes.size() < 8) return bytes;
    std::uint64_t header = 0;
    for (int i = 7; i >= 0; --i) header = (header << 8) | static_cast<unsigned char>(bytes[std::size_t(i)]);
    if (header > bytes.size() - 8) return bytes;
    const std::size_t at = bytes.find(key, 8);
    if (at == std::string::npos || at + key.size() + 9 > 8 + header) return bytes;
    const std::size_t digits = at + key.size();
    if (bytes[digits + 8] != '"') return bytes;
    bytes.replace(digits, 8, "00000000");
    const std::uint32_t crc = io::detail::crc32_update(0, bytes.data(), bytes.size());
    constexpr char kHex[] = "0123456789abcdef";
    for (int i = 0; i < 8; ++i) bytes[digits + std::size_t(i)] = kHex[(crc >> (28 - 4 * i)) & 0xF];
    return bytes;
}

}  // namespace qkv::fuzz
