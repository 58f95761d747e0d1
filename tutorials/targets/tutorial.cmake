# The training targets of issue 5: `build/tutorials/targets` reproduces all of them (minutes);
# ctest runs the documented short mode (reverse, seed 0).
qkv_tutorial(targets TRAINS ARGS --short)
