# Tutorial 15: no training, so the whole program runs under ctest (about a second).
qkv_tutorial(15_tokenization)
