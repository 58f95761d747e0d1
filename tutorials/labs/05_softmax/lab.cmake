qkv_lab(05_softmax "numerically stable softmax"
  MUTANTS no_max "subtract the row's maximum"
          backward_no_sum "as if y_j depended on x_j alone")
