qkv_tutorial(13_generate_text ARGS --short)
