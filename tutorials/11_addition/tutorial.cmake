# Tutorial 11: ctest runs the documented short mode (600 steps per answer order); the full run
# trains both orders to 100% (about two minutes).
qkv_tutorial(11_addition ARGS --short)
