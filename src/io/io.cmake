# Checkpoint I/O sources of the qkv library (included from the top-level CMakeLists.txt).
target_sources(qkv PRIVATE
  src/io/json.cpp
  src/io/file.cpp
  src/io/safetensors.cpp
  src/io/checkpoint.cpp
)
