qkv_tutorial(09_train_gpt)
