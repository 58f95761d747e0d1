/// \file
/// \brief libFuzzer target: the JSON reader (io::detail::parse_json), in both of its modes: the strict
/// one of safetensors headers and the full one of GPT-2's config.json and vocab.json.
///
/// Any input must either parse or throw qkv::Error — never crash, read out of bounds, recurse
/// without limit or take quadratic time (ASan, UBSan and libFuzzer's timeouts watch for each).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "io/io_detail.hpp"
#include "qkv/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    for (const bool any_json : {false, true}) {
        try {
            const auto value =
                qkv::io::detail::parse_json(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz", any_json);
            // Walk what was built, so that a malformed tree (a bad kind, a dangling member) is touched.
            std::size_t n = value.items.size() + value.members.size() + value.text.size();
            for (const auto& m : value.members) n += m.key.size() + m.value.text.size();
            if (n == std::size_t(-1)) return 1;
        } catch (const qkv::Error&) {
        }
    }
    return 0;
}
