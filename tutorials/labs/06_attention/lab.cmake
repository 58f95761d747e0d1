qkv_lab(06_attention "scaled dot-product attention, one head"
  MUTANTS no_scale "did you scale the scores by 1/√D?"
          mask_zero "masked scores must be −∞"
          dv_not_transposed "dV = Pᵀ·dO")
