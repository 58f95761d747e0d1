# Optimizer sources of the qkv library (included from the top-level CMakeLists.txt).
target_sources(qkv PRIVATE
  src/optim/optimizer.cpp
  src/optim/sgd.cpp
  src/optim/adam.cpp
  src/optim/clip.cpp
  src/optim/schedule.cpp
)
