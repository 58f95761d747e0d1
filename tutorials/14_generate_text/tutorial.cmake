# Tutorial 14: ctest runs the documented short mode (200 training steps instead of 1 000).
qkv_tutorial(14_generate_text TRAINS STEPS ARGS --short)
