/// \file
/// \brief libFuzzer target: the safetensors reader (io::parse_safetensors), from bytes in memory.
///
/// Any input must either load — every tensor's bytes inside the file, shapes that match them — or
/// throw qkv::Error. The checksum is repaired first (fuzz_support.hpp), so mutations reach the
/// tensor data and the BOOL check behind it.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz_support.hpp"
#include "qkv/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string bytes = qkv::fuzz::with_valid_crc(std::string(reinterpret_cast<const char*>(data), size));
    try {
        const qkv::io::SafeTensors st = qkv::io::parse_safetensors(bytes, "fuzz");
        // Read every element once: a tensor whose size disagrees with its storage shows up under ASan.
        unsigned char sum = 0;
        for (const auto& [name, t] : st.tensors) {
            const auto* p = static_cast<const unsigned char*>(t.raw_data());
            for (std::size_t i = 0; i < std::size_t(t.numel()) * qkv::dtype_size(t.dtype()); ++i) sum ^= p[i];
        }
        if (sum == 0xFF && st.metadata.size() == std::size_t(-1)) return 1;
    } catch (const qkv::Error&) {
    }
    return 0;
}
