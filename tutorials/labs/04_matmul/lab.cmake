qkv_lab(04_matmul "matrix multiply, naive to blocked and tiled"
  EXTRA speed
  MUTANTS ignore_beta "you ignored β"
          beta_zero_reads_c "with β = 0 the old C must not be read"
          edge_tiles "check the edge tiles")
if(QKV_BUILD_TESTS)
  # The speed program prints three GFLOP/s lines; the README's expected output (numbers as <any>) is checked.
  add_test(NAME lab.04.speed.solution
           COMMAND check_output ${CMAKE_CURRENT_SOURCE_DIR}/04_matmul/README.md
                   ${CMAKE_CROSSCOMPILING_EMULATOR} $<TARGET_FILE:lab04_speed_solution> --size 128)
  add_test(NAME lab.04.speed.stub
           COMMAND lab_expect fail --contains "not implemented yet: matmul_naive" -- ${CMAKE_CROSSCOMPILING_EMULATOR} $<TARGET_FILE:lab04_speed_stub>)
endif()
