/// \file
/// \brief libFuzzer target: loading a training checkpoint (TaskTrainer::load), the path `qkv eval`,
/// `sample`, `attention` and `train --resume` take with a file from anywhere.
///
/// Beyond the safetensors reader this reaches the checks of the run's settings (every size that
/// will be allocated comes from them), the model and optimizer state, the training state and the
/// curve. Any input must load or throw qkv::Error (qkv::OutOfMemory included: QKV_MEMORY_LIMIT
/// holds the models it may build to 256 MiB, which libFuzzer's memory limit allows). The checksum
/// is repaired first (fuzz_support.hpp). The bytes reach the loader through a memory file
/// (memfd), as TaskTrainer::load reads a path.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_support.hpp"
#include "qkv/train/train.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    ::setenv("QKV_MEMORY_LIMIT", "256M", 1);
    ::setenv("QKV_NUM_THREADS", "1", 1);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string bytes = qkv::fuzz::with_valid_crc(std::string(reinterpret_cast<const char*>(data), size));
    const int fd = ::memfd_create("qkv_fuzz_checkpoint", MFD_CLOEXEC);
    if (fd < 0) std::abort();
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n <= 0) std::abort();
        done += std::size_t(n);
    }
    try {
        const auto trainer = qkv::TaskTrainer::load("/proc/self/fd/" + std::to_string(fd));
        if (trainer->steps_done() < 0) std::abort();
    } catch (const qkv::Error&) {
    }
    ::close(fd);
    return 0;
}
