qkv_lab(07_multi_head "multi-head attention"
  MUTANTS reshape_no_transpose "a plain reshape of (B, T, C) to (B, H, T, D) mixes positions"
          scale_by_c "not 1/√C"
          no_out_proj "the output projection W_O")
