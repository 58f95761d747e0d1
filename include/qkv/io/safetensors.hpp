/// \file
/// \brief Reading and writing named tensors in the safetensors format.
///
/// A reader learns here how model weights are stored on disk in the format the PyTorch / Hugging
/// Face world exchanges. A safetensors file is three parts:
///
/// 1. 8 bytes: N, the length of the header, as a little-endian unsigned 64-bit integer;
/// 2. N bytes: a UTF-8 JSON object, one entry per tensor,
///    `"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}`, plus an optional
///    `"__metadata__": {"key": "value", ...}` of strings; padded with spaces so the data starts at
///    a multiple of 8 bytes;
/// 3. the raw data: every tensor's elements, row-major, little-endian, at [begin, end) counted
///    from the start of this section. The tensors cover it exactly, with no gaps or overlaps.
///
/// No code runs when a file is loaded (unlike Python's pickle), and the header says where
/// everything is, so a reader can check the whole layout before touching any data — which is what
/// load_safetensors() does: a truncated or corrupt file is a qkv::Error naming the problem, never
/// a crash or an out-of-bounds read. Files written by qkv also carry a CRC-32 of their bytes in the
/// metadata (`qkv.crc32`), so that a flipped bit anywhere — even inside the tensor data, where the
/// format itself has no redundancy — is detected when they are read back.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "qkv/core/tensor.hpp"
#include "qkv/io/file.hpp"

namespace qkv::io {

/// The `__metadata__` of a safetensors file: string keys to string values.
using Metadata = std::map<std::string, std::string>;

/// The contents of a safetensors file.
struct SafeTensors {
    std::vector<NamedTensor> tensors;  ///< the tensors, in the order the header lists them
    Metadata metadata;                 ///< the `__metadata__` entries, without qkv's own `qkv.*` keys
    /// True when the file carried qkv's CRC-32 (`qkv.crc32`, `qkv.format`) and it matched: the file
    /// is byte for byte what qkv wrote. A file without them (written by another program, or edited)
    /// loads too, but a caller that needs qkv's own data — the optimizer and training state of a
    /// checkpoint — must refuse it (load_checkpoint() does).
    bool crc_verified = false;
};

/// \brief The safetensors name of a dtype: "F32", "F64", "I32" or "BOOL".
/// \param dtype the dtype
/// \return the dtype string of the header, e.g. "F32"
std::string_view safetensors_dtype(DType dtype);

/// \brief The float32 value of an IEEE 754 half-precision (F16) number, given its 16 bits.
///
/// Exact for every input: binary32 holds every binary16 value, subnormals included; infinities
/// stay infinities and NaNs stay NaNs. This is how load_safetensors() reads F16 tensors.
/// \param h the 16 bits (sign, 5 exponent bits, 10 mantissa bits)
/// \return the same number as a float
float half_to_float(std::uint16_t h);

/// \brief The float32 value of a bfloat16 (BF16) number, given its 16 bits: they are the upper
/// half of the float's 32, so the conversion is exact. This is how load_safetensors() reads BF16.
/// \param b the 16 bits (sign, 8 exponent bits, 7 mantissa bits)
/// \return the same number as a float
float bfloat16_to_float(std::uint16_t b);

/// \brief Write \p tensors (and \p metadata) to \p path in the safetensors format, atomically:
/// the bytes go to a temporary file in the same directory, which is flushed to disk and renamed
/// over \p path only when complete. If anything fails, \p path keeps its previous content, no
/// temporary file is left, and qkv::Error is thrown.
///
/// The header lists the tensors in the given order; their data is laid out widest dtype first, so
/// every tensor starts at an offset aligned to its element size (readers that map the file into
/// memory rely on that). Names must be non-empty, unique and not `__metadata__`; metadata keys
/// starting with `qkv.` are reserved.
/// \param path the file to write
/// \param tensors named tensors (any dtype; undefined tensors are an error)
/// \param metadata string key/value pairs stored in `__metadata__`
void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors, const Metadata& metadata = {});

/// \brief Read a safetensors file written by qkv, PyTorch or any other conforming writer.
///
/// Element types: F32, F64, I32 and BOOL load as they are; the other types PyTorch writes for
/// these models are converted to the qkv dtype that holds them exactly: F16 and BF16 to f32, U8
/// to i32, and I64 (PyTorch's default integer type) to i32, where a value outside the range of
/// int32 is an error naming the tensor, the element and the value, not a silent wrap-around.
/// (Saving always writes qkv's own dtypes: F32, F64, I32, BOOL.)
///
/// Validates everything before trusting it; throws qkv::Error naming the file, the tensor and the
/// problem for: a file shorter than 8 bytes, a header length beyond the file, malformed JSON, a
/// missing or unexpected field, an unknown dtype, a shape that does not match its byte range,
/// offsets out of range, overlapping or leaving gaps, a truncated data section, and (for qkv
/// files) a CRC mismatch.
/// \param path the file to read
/// \return the tensors (new, owning their data) and the metadata
SafeTensors load_safetensors(const std::string& path);

/// \brief The same as load_safetensors(), from bytes already in memory.
/// \param bytes the whole file
/// \param source how to name the bytes in error messages (a path, "buffer", ...)
/// \return the tensors (copied out of \p bytes) and the metadata
SafeTensors parse_safetensors(std::string_view bytes, std::string_view source = "buffer");

}  // namespace qkv::io
