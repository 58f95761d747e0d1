# After `qkv train` stopped at its first evaluation (step 100, the default reverse run), its curve
# must still be a curve: several CSV rows (the loss every 10 steps) and an SVG line through several
# points, with distinct step labels under it.
#
#   cmake -DCSV=<run>.csv -DSVG=<run>.svg -P train_curve.cmake
cmake_minimum_required(VERSION 3.25)

file(STRINGS ${CSV} rows)
list(LENGTH rows n)
math(EXPR n "${n} - 1")  # the header
if(n LESS 5)
  message(FATAL_ERROR "${CSV}: ${n} data rows; a run of 100 steps must log the loss every 10 steps")
endif()
list(GET rows 1 first)
list(GET rows -1 last)
if(NOT first MATCHES "^10,[0-9.]+,,")
  message(FATAL_ERROR "${CSV}: the first row should be step 10 with a loss and no accuracy, got '${first}'")
endif()
if(NOT last MATCHES "^100,[0-9.]+,1.0000,")
  message(FATAL_ERROR "${CSV}: the last row should be the evaluation at step 100 (100%), got '${last}'")
endif()

file(READ ${SVG} svg)
string(REGEX MATCHALL "points=\"[^\"]*\"" lines "${svg}")
list(GET lines 0 loss_line)
string(REGEX MATCHALL "[0-9.]+,[0-9.]+" points "${loss_line}")
list(LENGTH points np)
if(np LESS 5)
  message(FATAL_ERROR "${SVG}: the loss line has ${np} points, expected one per CSV row (${n})")
endif()
string(REGEX MATCHALL "y=\"388\" text-anchor=\"middle\">[^<]*<" ticks "${svg}")
set(labels "")
foreach(t ${ticks})
  string(REGEX REPLACE ".*>([^<]*)<" "\\1" label "${t}")
  list(APPEND labels "${label}")
endforeach()
set(unique ${labels})
list(REMOVE_DUPLICATES unique)
list(LENGTH labels nl)
list(LENGTH unique nu)
if(nl LESS 2 OR NOT nl EQUAL nu)
  message(FATAL_ERROR "${SVG}: x-axis labels must be distinct, got: ${labels}")
endif()
message(STATUS "curve ok: ${n} CSV rows, ${np} points on the loss line, x labels ${labels}")
