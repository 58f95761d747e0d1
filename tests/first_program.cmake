# The README's "A first program", compiled and linked the plain way the README shows — no CMake,
# no pkg-config, just the compiler, qkv's headers, libqkv.a and fmt — then run; its output must be
# the README's "It prints:" block. Keeps the snippet, the command and the output honest.
#
#   cmake -DREADME=README.md -DCXX=c++ -DINCLUDE=include -DLIB=build/libqkv.a -DWORK=dir
#         [-DEXTRA_FLAGS="-fsanitize=..."] [-DEMULATOR="qemu-aarch64 -L ..."] -P first_program.cmake
# (EMULATOR runs the program when it was cross-compiled.)
file(READ ${README} text)
# The first ```cpp block after the heading, and the first ``` block after "It prints:".
string(FIND "${text}" "## A first program" at)
if(at EQUAL -1)
  message(FATAL_ERROR "README: no '## A first program' section")
endif()
string(SUBSTRING "${text}" ${at} -1 text)
if(NOT text MATCHES "```cpp\n(.*)\n```\n")
  message(FATAL_ERROR "README: no ```cpp block in 'A first program'")
endif()
string(REGEX MATCH "```cpp\n([^`]*)```" code "${text}")
set(code "${CMAKE_MATCH_1}")
string(REGEX MATCH "It prints:\n\n```\n([^`]*)```" expected "${text}")
set(expected "${CMAKE_MATCH_1}")
if(expected STREQUAL "")
  message(FATAL_ERROR "README: no 'It prints:' block in 'A first program'")
endif()
file(MAKE_DIRECTORY ${WORK})
file(WRITE ${WORK}/first.cpp "${code}")
separate_arguments(extra UNIX_COMMAND "${EXTRA_FLAGS}")
execute_process(COMMAND ${CXX} -std=c++20 -O2 ${extra} -I ${INCLUDE} ${WORK}/first.cpp ${LIB} -lfmt -o ${WORK}/first
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(rc)
  message(FATAL_ERROR "the plain link failed (${rc}):\n${err}")
endif()
separate_arguments(emulator UNIX_COMMAND "${EMULATOR}")
execute_process(COMMAND ${emulator} ${WORK}/first RESULT_VARIABLE rc OUTPUT_VARIABLE out)
if(rc)
  message(FATAL_ERROR "the first program failed (${rc}):\n${out}")
endif()
if(NOT out STREQUAL expected)
  message(FATAL_ERROR "the first program printed\n${out}\nbut the README says\n${expected}")
endif()
message(STATUS "first program: compiled with a plain '${CXX} ... libqkv.a -lfmt' and printed what the README says")
