qkv_lab(08_layer_norm "layer norm, forward and backward"
  MUTANTS unbiased_var "divide by C, not C − 1"
          backward_no_mean_terms "depends on every element of its row"
          eps_outside_sqrt "ε goes inside the square root")
