# Tutorial 9: embeddings, LM head, cross-entropy, initialisation and AdamW (under a second). It
# trains only a few steps of a float64 model, so it carries no "trains" label and the suite under
# qemu runs it too (8 s there on the EPYC VM).
qkv_tutorial(09_around_the_blocks)
