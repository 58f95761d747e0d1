qkv_tutorial(10_addition ARGS --short)
