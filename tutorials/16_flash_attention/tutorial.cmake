# Tutorial 16: online softmax and the tiled attention kernel, T = 64 … 4096 (a few seconds on one
# core; the times it prints vary, the memory and the agreement do not).
# HEAVY: attention at T = 4096 takes 8 minutes under qemu. The suite under qemu runs the short test
# below instead: the same program stopped at T = 512 (--max-t), held to the first 17 lines of the
# README's expected block (sections 1 and 2, the table's header and its rows up to T = 512).
qkv_tutorial(16_flash_attention HEAVY)
if(QKV_BUILD_TESTS)
  add_test(NAME tutorial.16_flash_attention.short
           COMMAND check_output --first 17 ${CMAKE_CURRENT_SOURCE_DIR}/16_flash_attention/README.md
                   ${CMAKE_CROSSCOMPILING_EMULATOR} $<TARGET_FILE:16_flash_attention> --max-t 512)
endif()
