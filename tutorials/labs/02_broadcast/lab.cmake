qkv_lab(02_broadcast "a tensor op's backward, with broadcasting"
  MUTANTS swap_factors "each input's gradient is dy times the *other* input"
          assign_grad "add into the gradient (+=), never assign"
          sum_ones "the dy of the sum it went into")
