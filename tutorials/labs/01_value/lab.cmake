qkv_lab(01_value "scalar autograd from scratch (Value)"
  MUTANTS assign_grad "add into grad (+=), never assign"
          no_topo "reverse topological order")
