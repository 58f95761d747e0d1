# Kernel sources of the qkv library (included from the top-level CMakeLists.txt).
target_sources(qkv PRIVATE
  src/kernels/gemm_reference.cpp
  src/kernels/gemm_dispatch.cpp
)
