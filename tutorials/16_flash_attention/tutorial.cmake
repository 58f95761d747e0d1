# Tutorial 16: online softmax and the tiled attention kernel, T = 64 … 4096 (a few seconds on one
# core; the times it prints vary, the memory and the agreement do not).
qkv_tutorial(16_flash_attention)
