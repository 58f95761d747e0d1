qkv_tutorial(07_multi_head)
