# Tutorial 9: the full program runs under ctest (under a minute on 2 cores).
qkv_tutorial(09_train_gpt)
