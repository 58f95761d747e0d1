/// \file
/// \brief Internals of qkv's file I/O: a small strict JSON reader/writer, CRC-32, and files
/// written atomically (temporary file + rename).
///
/// Nothing here is public API; safetensors.cpp and checkpoint.cpp build on it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "qkv/core/tensor.hpp"

namespace qkv::io::detail {

// ---- JSON ---------------------------------------------------------------------------------------

struct JsonMember;

/// \brief A parsed JSON value. A safetensors header uses only objects, arrays, strings and
/// non-negative integers, and parse_json() rejects anything else there; a configuration file
/// (parse_json() with \p any_json) may also hold other numbers (kind number, kept as text) and
/// true, false and null (kind literal).
///
/// A value holds values: `items` and `members` are vectors of a type that is still incomplete
/// where they are declared, which the standard allows for std::vector (since C++17) as long as the
/// element type is complete before the vector is used. It does not allow it for std::pair, whose
/// instantiation needs both types complete: a `std::vector<std::pair<std::string, JsonValue>>`
/// member happened to compile with libstdc++ but not with clang and libc++. Hence JsonMember, a
/// plain struct completed right below.
struct JsonValue {
    enum class Kind { object, array, string, integer, number, literal };
    Kind kind = Kind::object;                              ///< which kind of value
    std::string text;                                      ///< the decoded string (kind string), the source text (number, literal)
    std::uint64_t number = 0;                              ///< the value (kind integer)
    std::vector<JsonValue> items;                          ///< the elements (kind array)
    std::vector<JsonMember> members;                       ///< key/value pairs in file order (kind object)
    std::size_t offset = 0;                                ///< byte offset of the value in the text
};

/// \brief One key/value pair of a JSON object (`auto& [key, value] = member` works on it).
struct JsonMember {
    std::string key;  ///< the decoded key
    JsonValue value;  ///< its value
};

/// \brief Name of a JSON kind for messages ("an object", "a string", ...).
const char* json_kind_name(JsonValue::Kind kind);

/// \brief Parse \p text as one JSON value followed only by whitespace. Strict: duplicate keys,
/// invalid UTF-8, control characters in strings, lone surrogates and nesting deeper than 16 levels
/// are errors. Throws qkv::Error "<context>: malformed JSON header: <what> at byte <n>" (without
/// "header" when \p any_json).
/// \param text the JSON text
/// \param context prefix for error messages (function and file)
/// \param any_json accept all of JSON (numbers of any form, true, false, null), as a configuration
/// file needs; false: only what a safetensors header holds
JsonValue parse_json(std::string_view text, std::string_view context, bool any_json = false);

/// \brief Append \p s to \p out as a JSON string literal (quotes, escapes for `"`, `\` and control
/// characters; other bytes, UTF-8 included, are copied as they are).
void append_json_string(std::string& out, std::string_view s);

// ---- CRC-32 -------------------------------------------------------------------------------------

/// \brief Continue a CRC-32 (IEEE 802.3, as zlib and PNG use) over \p n more bytes. Start with
/// crc = 0; feeding the bytes in pieces gives the same result as feeding them at once.
std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t n);

// ---- files --------------------------------------------------------------------------------------

/// \brief Write the pieces one after another to \p path *atomically*: to a temporary file in the
/// same directory first, flushed to disk (fsync), then renamed over \p path. On any failure the
/// temporary file is removed and \p path keeps its previous content. Throws qkv::Error.
void write_file_atomic(const std::string& path, const std::vector<std::string_view>& pieces, std::string_view context);

/// Test hook (see io::detail::set_write_fault in safetensors.hpp): bytes to write before a
/// simulated failure, or −1 for none.
extern std::int64_t g_write_fault_after;

/// \brief Throws, naming \p shown, unless \p in_file has \p param's shape and dtype: the check
/// load_checkpoint() and load_state_dict() make for every tensor before they copy any.
/// \param ctx the operation and file, for the message
/// \param shown how to name the tensor (quoted name, and the model's name when it differs)
/// \param in_file the tensor read from the file
/// \param param the model's parameter it would be copied into
void check_loadable(std::string_view ctx, std::string_view shown, const Tensor& in_file, const Tensor& param);

}  // namespace qkv::io::detail
