qkv_tutorial(04_matmul)
