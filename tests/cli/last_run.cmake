# `qkv train --task sort`, then `qkv sample`, `eval` and `attention` without --checkpoint must open
# the sort model (named in runs/last), say so, and `train` must print the --checkpoint to pass. In
# an empty directory, without runs/last, they fail with a message saying what to do.
#
#   cmake -DQKV=<qkv binary> -DWORK=<empty scratch directory> [-DEMULATOR=<qemu ...>] -P last_run.cmake
cmake_minimum_required(VERSION 3.25)

# A cross-build's tests run the qkv binary through its emulator.
separate_arguments(emulator UNIX_COMMAND "${EMULATOR}")

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/trained ${WORK}/empty)

function(run expect_ok out_var)
  execute_process(COMMAND ${emulator} ${QKV} ${ARGN} WORKING_DIRECTORY ${DIR} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(expect_ok STREQUAL "ok" AND NOT rc EQUAL 0)
    message(FATAL_ERROR "qkv ${ARGN} failed (${rc}):\n${out}${err}")
  endif()
  set(${out_var} "${out}${err}" PARENT_SCOPE)
  set(rc ${rc} PARENT_SCOPE)
endfunction()

function(expect text regex what)
  if(NOT text MATCHES "${regex}")
    message(FATAL_ERROR "${what}: expected to match '${regex}' in:\n${text}")
  endif()
endfunction()

# A short sort run (it does not reach 100%, so train exits 1: the checkpoint is saved all the same).
set(DIR ${WORK}/trained)
run(any out train --task sort --steps 20 --eval-every 10 --eval-size 20 --dim 16 --heads 2 --layers 1 --quiet)
expect("${out}" "model saved to runs/sort-seed0.safetensors" "train")
expect("${out}" "look at it: qkv sample --checkpoint runs/sort-seed0.safetensors" "train's last words")
file(READ ${DIR}/runs/last last)
string(STRIP "${last}" last)
if(NOT last STREQUAL "${DIR}/runs/sort-seed0.safetensors")
  message(FATAL_ERROR "runs/last names '${last}', expected ${DIR}/runs/sort-seed0.safetensors")
endif()

set(opened "checkpoint: ${DIR}/runs/sort-seed0.safetensors \\(the last model 'qkv train' saved, named in runs/last\\)")
run(ok out sample --count 2)
expect("${out}" "${opened}" "sample")
expect("${out}" "\n[0-9][0-9][0-9][0-9][0-9][0-9] = [0-9_=]+   " "sample's answers to 6-digit sort prompts")
run(ok out eval --eval-size 10)
expect("${out}" "${opened}" "eval")
expect("${out}" "sort after 20 steps" "eval")
run(ok out attention --no-color --svg ${WORK}/attention.svg)
expect("${out}" "${opened}" "attention")

# No runs/last here: a clear error, exit status 1.
set(DIR ${WORK}/empty)
run(any out sample)
if(NOT rc EQUAL 1)
  message(FATAL_ERROR "sample without runs/last exited with ${rc}, expected 1:\n${out}")
endif()
expect("${out}" "no --checkpoint given, and runs/last \\(written by 'qkv train'\\) does not exist" "sample without a run")
message(STATUS "last run: train records it, sample/eval/attention open it")
