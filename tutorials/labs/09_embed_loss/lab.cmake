qkv_lab(09_embed_loss "token and position embeddings, cross-entropy"
  MUTANTS tok_assign "must receive both gradients (+=)"
          ce_no_mean "divide the gradient by N"
          ce_no_max "m + log Σ exp(z − m)")
