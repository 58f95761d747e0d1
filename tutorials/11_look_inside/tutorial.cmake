# Tutorial 11: the full program runs under ctest (under a minute on 2 cores).
qkv_tutorial(11_look_inside)
