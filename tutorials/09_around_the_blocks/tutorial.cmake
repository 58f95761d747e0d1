# Tutorial 9: embeddings, LM head, cross-entropy, initialisation and AdamW (a second or two).
qkv_tutorial(09_around_the_blocks TRAINS)
