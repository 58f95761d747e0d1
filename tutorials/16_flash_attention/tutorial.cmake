# Tutorial 16: online softmax and the tiled attention kernel, T = 64 … 4096 (a few seconds on one
# core; the times it prints vary, the memory and the agreement do not).
# HEAVY: attention at T = 4096 takes 8 minutes under qemu; the tiled kernel itself is tested there
# by the unit tests ("tiled attention equals the materialising kernel, ...").
qkv_tutorial(16_flash_attention HEAVY)
