# The layers of qkv and the one rule between them: a file may include headers of its own layer or
# of a layer below it, never of a layer above. Data and calls flow one way — kernels know nothing of
# tensors, ops nothing of modules, modules nothing of the command line — so a reader can stop at any
# layer and understand it alone.
#
# A file's layer is its folder: src/<layer>/… and include/qkv/<layer>/…. An include names its layer
# the same way: "qkv/<layer>/x.hpp" (public) or "<layer>/x.hpp" (private, below src/); a bare
# "x.hpp" is a file of the includer's own folder. include/qkv/error.hpp (qkv::Error, thrown by every
# layer) is below them all; include/qkv/qkv.hpp (the umbrella) is for programs, not the library.
#
# Two ways to use this file:
#   include(layers.cmake)                                  (src/CMakeLists.txt) adds the check to the
#                                                          library's build: it runs whenever a
#                                                          source or header changes, and fails it;
#   cmake -DROOT=<tree> -P src/layers.cmake                checks the tree at ROOT and exits non-zero
#                                                          naming every upward include (tests/layering
#                                                          runs it on a tree with a deliberate one).

# Rank of each layer: an include may go to an equal or lower rank.
set(qkv_layer_ranks
  base=0     # include/qkv/error.hpp
  kernels=1
  core=2
  ops=3
  nn=4 optim=4
  io=5 data=5 viz=5
  train=6
  cli=7)

# The same, as one line for messages (a list would split the message it is quoted in).
list(JOIN qkv_layer_ranks " " qkv_layer_text)

function(qkv_layer_rank layer out)
  foreach(pair ${qkv_layer_ranks})
    if(pair MATCHES "^${layer}=([0-9]+)$")
      set(${out} ${CMAKE_MATCH_1} PARENT_SCOPE)
      return()
    endif()
  endforeach()
  set(${out} "" PARENT_SCOPE)
endfunction()

# Layer of a file given by its path relative to the root ("" when it belongs to none).
function(qkv_layer_of_file path out)
  if(path STREQUAL "include/qkv/error.hpp")
    set(${out} base PARENT_SCOPE)
  elseif(path MATCHES "^src/([a-z_]+)/")  # (two branches: if() evaluates both sides of an OR, and
    set(${out} ${CMAKE_MATCH_1} PARENT_SCOPE)  #  the failing match would clear CMAKE_MATCH_1)
  elseif(path MATCHES "^include/qkv/([a-z_]+)/")
    set(${out} ${CMAKE_MATCH_1} PARENT_SCOPE)
  else()
    set(${out} "" PARENT_SCOPE)
  endif()
endfunction()

function(qkv_check_layers root)
  file(GLOB_RECURSE files RELATIVE ${root} ${root}/src/*.cpp ${root}/src/*.hpp ${root}/src/*.inl
                                           ${root}/include/*.hpp)
  list(SORT files)
  set(errors "")
  set(checked 0)
  foreach(file ${files})
    qkv_layer_of_file(${file} layer)
    if(file STREQUAL "include/qkv/qkv.hpp")
      continue()  # the umbrella: includes everything, included by nothing in the library
    endif()
    qkv_layer_rank("${layer}" rank)
    if(rank STREQUAL "")
      list(APPEND errors "${file}: not in a layer's folder (src/<layer>/ or include/qkv/<layer>/, layers: ${qkv_layer_ranks})")
      continue()
    endif()
    math(EXPR checked "${checked} + 1")
    file(STRINGS ${root}/${file} includes REGEX "^[ \t]*#[ \t]*include[ \t]*(\"|<qkv/)")
    foreach(line ${includes})
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*[\"<]([^\">]*)[\">].*$" "\\1" target "${line}")
      if(target STREQUAL "qkv/qkv.hpp")
        list(APPEND errors "${file} includes \"${target}\": the umbrella header is for programs; include what you use")
        continue()
      elseif(target STREQUAL "qkv/error.hpp")
        set(to base)
      elseif(target MATCHES "^qkv/([a-z_]+)/")
        set(to ${CMAKE_MATCH_1})
      elseif(target MATCHES "^([a-z_]+)/")
        set(to ${CMAKE_MATCH_1})
      elseif(NOT target MATCHES "/")
        set(to ${layer})  # a file of the same folder
      else()
        list(APPEND errors "${file} includes \"${target}\": write includes as \"qkv/<layer>/…\", \"<layer>/…\" or a file of the same folder")
        continue()
      endif()
      qkv_layer_rank("${to}" to_rank)
      if(to_rank STREQUAL "")
        list(APPEND errors "${file} includes \"${target}\": '${to}' is not a layer (layers: ${qkv_layer_text})")
      elseif(to_rank GREATER rank)
        list(APPEND errors "${file} (layer ${layer}) includes \"${target}\" from the layer above it, ${to}: includes may only point down (${qkv_layer_text})")
      endif()
    endforeach()
  endforeach()
  if(errors)
    list(LENGTH errors n)
    list(JOIN errors "\n  " text)
    message(FATAL_ERROR "layering: ${n} include(s) break the rule 'includes only point down':\n  ${text}")
  endif()
  message(STATUS "layering: ${checked} files, every include points down or sideways within its layer")
endfunction()

if(CMAKE_SCRIPT_MODE_FILE)
  if(NOT DEFINED ROOT)
    message(FATAL_ERROR "usage: cmake -DROOT=<source tree> -P layers.cmake")
  endif()
  qkv_check_layers(${ROOT})
  if(DEFINED STAMP)
    file(TOUCH ${STAMP})
  endif()
else()
  # In the build: re-run the check whenever any source or header of the library changes.
  file(GLOB_RECURSE qkv_layered_files CONFIGURE_DEPENDS
    ${PROJECT_SOURCE_DIR}/src/*.cpp ${PROJECT_SOURCE_DIR}/src/*.hpp ${PROJECT_SOURCE_DIR}/src/*.inl
    ${PROJECT_SOURCE_DIR}/include/*.hpp)
  add_custom_command(
    OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/layers.ok
    COMMAND ${CMAKE_COMMAND} -DROOT=${PROJECT_SOURCE_DIR} -DSTAMP=${CMAKE_CURRENT_BINARY_DIR}/layers.ok
            -P ${CMAKE_CURRENT_LIST_FILE}
    DEPENDS ${qkv_layered_files} ${CMAKE_CURRENT_LIST_FILE}
    COMMENT "layering: includes only point down"
    VERBATIM)
  add_custom_target(qkv_layers DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/layers.ok)
  add_dependencies(qkv qkv_layers)
endif()
