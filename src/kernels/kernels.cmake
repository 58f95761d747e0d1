# Kernel sources of the qkv library (included from the top-level CMakeLists.txt).
#
# Only gemm_avx2.cpp (-mavx2 -mfma) and gemm_avx512.cpp (-mavx512f -mfma) are compiled with extra
# instruction sets: everything else stays baseline x86-64 (or any other architecture), and each
# SIMD kernel runs only after cpu_has_avx2_fma() / cpu_has_avx512() said yes. Both include the one
# shared algorithm, gemm_kernel.inl. On non-x86 machines the SIMD files are left out and the
# reference path is the only GEMM.
target_sources(qkv PRIVATE
  src/kernels/gemm_reference.cpp
  src/kernels/gemm_dispatch.cpp
  src/kernels/cpu_features.cpp
  src/kernels/parallel.cpp
)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i[3-6]86)$")
  target_sources(qkv PRIVATE src/kernels/gemm_avx2.cpp src/kernels/gemm_avx512.cpp)
  set_source_files_properties(src/kernels/gemm_avx2.cpp PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma")
  set_source_files_properties(src/kernels/gemm_avx512.cpp PROPERTIES COMPILE_OPTIONS "-mavx512f;-mfma")
  # Tells the dispatcher and cpu_features.cpp that the SIMD kernels are linked in.
  set_source_files_properties(src/kernels/gemm_dispatch.cpp src/kernels/cpu_features.cpp
    PROPERTIES COMPILE_DEFINITIONS "QKV_HAVE_AVX2_KERNEL=1;QKV_HAVE_AVX512_KERNEL=1")
endif()
