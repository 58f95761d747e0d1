# Tutorial 13: the full program runs under ctest (under a minute on 2 cores).
qkv_tutorial(13_encoder_decoder TRAINS STEPS)
