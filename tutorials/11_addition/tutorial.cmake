# Tutorial 11: ctest runs the documented short mode (600 steps per answer order); the full run
# trains both orders to 100% (15–20 s on 2 cores, as its README says).
qkv_tutorial(11_addition TRAINS STEPS ARGS --short)
