# A text run as a new user makes it, in an empty directory: `qkv train --text` (default output dir
# runs/), then `qkv sample --prompt` without --checkpoint (runs/last names the model), on 1 and 2
# threads with the same seed (the same text, past the context too), `eval` refused with a pointer
# to sample, task-only flags refused, and `--resume` with a longer budget.
#
#   cmake -DQKV=<qkv binary> -DCORPUS=<data/corpus.txt> -DWORK=<scratch directory> [-DEMULATOR=<qemu ...>]
#         -P text_run.cmake
cmake_minimum_required(VERSION 3.25)

# A cross-build's tests run the qkv binary through its emulator (qemu-aarch64 -L ...).
separate_arguments(emulator UNIX_COMMAND "${EMULATOR}")

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

# run(<ok|any> <out_var> args...): stdout in out_var, stderr in out_var_err, exit status in rc.
function(run expect_ok out_var)
  execute_process(COMMAND ${emulator} ${QKV} ${ARGN} WORKING_DIRECTORY ${WORK} RESULT_VARIABLE code OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(expect_ok STREQUAL "ok" AND NOT code EQUAL 0)
    message(FATAL_ERROR "qkv ${ARGN} failed (${code}):\n${out}${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
  set(${out_var}_err "${err}" PARENT_SCOPE)
  set(rc ${code} PARENT_SCOPE)
endfunction()

function(expect text regex what)
  if(NOT text MATCHES "${regex}")
    message(FATAL_ERROR "${what}: expected to match '${regex}' in:\n${text}")
  endif()
endfunction()

set(tiny --layers 1 --heads 2 --dim 32 --context 32 --batch 8 --eval-every 10 --warmup 5)
run(ok out train --text ${CORPUS} --steps 30 ${tiny})
expect("${out}" "char tokenizer, 60 tokens\n" "train: the tokenizer line")
expect("${out}" "before training: validation loss 4\\.[0-9]+ \\(a uniform guess over 60 tokens: ln 60 = 4\\.094\\)" "train")
expect("${out}" "step +30/30  train [0-9.]+  val [0-9.]+  ppl [0-9.]+  [0-9.]+ bits/byte +[0-9]+ tok/s  done\nfinished 30 steps" "train's last progress line")
expect("${out}" "model saved to runs/corpus-char-seed0.safetensors \\(with its tokenizer\\)" "train")
file(READ ${WORK}/runs/last last)
string(STRIP "${last}" last)
if(NOT last STREQUAL "${WORK}/runs/corpus-char-seed0.safetensors")
  message(FATAL_ERROR "runs/last names '${last}', expected ${WORK}/runs/corpus-char-seed0.safetensors")
endif()
file(STRINGS ${WORK}/runs/corpus-char-seed0.csv rows)
list(GET rows 0 header)
list(GET rows 3 last_row)
if(NOT header STREQUAL "step,train_loss,validation_loss,perplexity,bits_per_byte,lr,seconds" OR
   NOT last_row MATCHES "^30,[0-9.]+,[0-9.]+,[0-9.]+,[0-9.]+,")
  message(FATAL_ERROR "the curve's CSV: '${header}' ... '${last_row}'")
endif()
file(READ ${WORK}/runs/corpus-char-seed0.svg svg)
expect("${svg}" "validation loss" "the curve's SVG")

# sample opens runs/last, streams the prompt and 300 tokens (past the context of 32), reports tokens/s.
run(ok one sample --prompt "The fox " --tokens 300 --seed 3 --threads 1)
expect("${one}" "^checkpoint: ${WORK}/runs/corpus-char-seed0.safetensors \\(the last model" "sample")
expect("${one}" "\nThe fox " "sample's text")
expect("${one_err}" "^\\[300 tokens in [0-9.]+ s: [0-9]+ tokens/s; 1 thread, seed 3, temperature 0.8\\]" "sample's report")
string(LENGTH "${one}" n)
if(n LESS 300)
  message(FATAL_ERROR "sample wrote ${n} bytes, fewer than 300 tokens:\n${one}")
endif()
run(ok two sample --prompt "The fox " --tokens 300 --seed 3 --threads 2)
if(NOT one STREQUAL two)
  message(FATAL_ERROR "the same seed wrote different text on 1 and 2 threads:\n--- 1 thread\n${one}\n--- 2 threads\n${two}")
endif()
run(ok other sample --prompt "The fox " --tokens 300 --seed 4 --threads 1)
if(one STREQUAL other)
  message(FATAL_ERROR "seeds 3 and 4 wrote the same text")
endif()
run(ok cached sample --prompt "The fox " --tokens 300 --seed 3 --top-k 20 --top-p 0.9 --quiet)
run(ok uncached sample --prompt "The fox " --tokens 300 --seed 3 --top-k 20 --top-p 0.9 --quiet --no-cache)
if(NOT cached STREQUAL uncached OR NOT cached_err STREQUAL "")
  message(FATAL_ERROR "with and without the key/value cache the text differs (or --quiet printed):\n${cached}\n---\n${uncached}\n${cached_err}")
endif()

# An empty prompt is bad usage (leaving --prompt out starts from a newline).
# (execute_process itself: an empty argument would vanish in run()'s ${ARGN})
execute_process(COMMAND ${emulator} ${QKV} sample --prompt "" WORKING_DIRECTORY ${WORK} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE out_err)
expect("${out_err}" "--prompt is empty: give some text, or leave --prompt out to start from a newline" "sample --prompt \"\"")
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "sample --prompt \"\" exited with ${rc}, expected 2")
endif()
run(ok out sample --tokens 20 --quiet)
expect("${out}" "\n\n" "sample without --prompt starts from a newline")

# The task commands refuse a text model with a pointer; task-only flags are bad usage.
run(any out eval)
expect("${out}${out_err}" "is a text model \\(saved by 'qkv train --text'\\): 'qkv eval' is for task models" "eval")
if(NOT rc EQUAL 1)
  message(FATAL_ERROR "eval of a text model exited with ${rc}, expected 1")
endif()
run(any out sample --count 3)
expect("${out_err}" "--count is for task models" "sample --count")
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "sample --count on a text model exited with ${rc}, expected 2")
endif()

# Resume with a longer budget; changing a setting is refused.
run(ok out train --resume runs/corpus-char-seed0.safetensors --steps 40 --save runs/longer.safetensors)
expect("${out}" "resuming at step 30" "resume")
expect("${out}" "finished 40 steps" "resume")
run(any out train --resume runs/corpus-char-seed0.safetensors --lr 0.1)
expect("${out_err}" "--lr cannot change a resumed run" "resume with --lr")
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "resume with --lr exited with ${rc}, expected 2")
endif()
message(STATUS "text run: train, sample (1 and 2 threads alike), eval refused, resume")
