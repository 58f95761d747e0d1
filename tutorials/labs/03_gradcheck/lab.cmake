qkv_lab(03_gradcheck "gradient checking by central differences"
  MUTANTS forward_difference "use the central difference"
          no_abs "compare |analytic − numeric|"
          relative_only "a purely relative test")
