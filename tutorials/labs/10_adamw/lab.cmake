qkv_lab(10_adamw "the AdamW update"
  MUTANTS no_bias_correction "bias correction"
          coupled_decay "that is Adam with an L2 penalty"
          decay_without_lr "θ ← θ·(1 − ηλ)")
