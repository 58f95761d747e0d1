/// \file
/// \brief Saving a file so that a crash, a full disk or Ctrl-C never leaves it half-written.
///
/// A reader learns here the one rule every file qkv writes follows (checkpoints, plots, curves):
/// write the bytes to a temporary file in the same directory, flush them to disk, then rename the
/// temporary file over the target. A rename within one file system is atomic, so anyone opening
/// the target sees either the old content or the new, never a mix. Three details make it behave
/// like an ordinary write from the user's side: a symbolic link is written through (the file it
/// points to is replaced, the link stays), a replaced file keeps its permissions (0600 stays
/// 0600), and Ctrl-C or SIGTERM arriving mid-save is held back until the save is complete, so no
/// temporary file is left behind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace qkv::io {

/// \brief The whole content of a file, byte for byte: the one way qkv reads a file it takes in
/// whole (a text to learn from, a tokenizer, a checkpoint, GPT-2's JSON files). Pipes such as
/// /dev/stdin work too. Throws qkv::Error "<context>: ..." naming \p path when the file cannot be
/// opened or read, is a directory, or holds more than \p limit bytes — the limit keeps a file that
/// should be small (a configuration) from filling memory when a wrong path is given.
/// \param path the file \param context who reads, for error messages (e.g. "load_safetensors")
/// \param limit the most bytes accepted \return the bytes
std::string read_file(const std::string& path, std::string_view context,
                      std::size_t limit = std::numeric_limits<std::size_t>::max());

/// \brief Write \p text to \p path atomically, the way every file qkv saves is written: to a
/// temporary file in the same directory, flushed to disk, then renamed over \p path. On failure
/// \p path keeps its previous content, no temporary file is left, and qkv::Error is thrown.
/// \param path the file to write \param text its whole content
/// \param context what is being saved, for error messages (e.g. "plot")
void write_text_file(const std::string& path, std::string_view text, std::string_view context);

/// \brief Check, before a long computation, that a file can later be saved at \p path the way
/// write_text_file() and save_safetensors() save it: the directory exists and a file can be
/// created in it, and \p path is not something other than a regular file. Creates and removes a
/// small temporary file to find out. Throws qkv::Error naming the path and the reason.
/// \param path the file that will be written \param context who asks, for error messages
void check_writable(const std::string& path, std::string_view context);

/// \cond INTERNAL
namespace detail {
/// \brief Test hook: while \p after_bytes ≥ 0, every file write fails after that many bytes, as if
/// the disk were full. −1 turns the fault off.
/// \param after_bytes bytes written before the failure, or −1
void set_write_fault(std::int64_t after_bytes);
}  // namespace detail
/// \endcond

}  // namespace qkv::io
