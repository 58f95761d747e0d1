# Kernel sources of the qkv library (included from the top-level CMakeLists.txt).
#
# Only gemm_avx2.cpp is compiled with -mavx2 -mfma: everything else stays baseline x86-64 (or any
# other architecture), and the AVX2 code runs only after cpu_has_avx2_fma() said yes. On
# non-x86 machines the AVX2 file is left out and the reference path is the only GEMM.
target_sources(qkv PRIVATE
  src/kernels/gemm_reference.cpp
  src/kernels/gemm_dispatch.cpp
  src/kernels/cpu_features.cpp
  src/kernels/parallel.cpp
)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i[3-6]86)$")
  target_sources(qkv PRIVATE src/kernels/gemm_avx2.cpp)
  set_source_files_properties(src/kernels/gemm_avx2.cpp PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma")
  # Tells the dispatcher and cpu_features.cpp that the AVX2 kernel is linked in.
  set_source_files_properties(src/kernels/gemm_dispatch.cpp src/kernels/cpu_features.cpp
    PROPERTIES COMPILE_DEFINITIONS QKV_HAVE_AVX2_KERNEL=1)
endif()
