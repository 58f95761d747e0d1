# Tutorial 10: the full program runs under ctest (under a minute on 2 cores).
qkv_tutorial(10_train_gpt TRAINS STEPS)
