# Tutorial 12: the full program runs under ctest (under a minute on 2 cores).
qkv_tutorial(12_look_inside TRAINS STEPS)
