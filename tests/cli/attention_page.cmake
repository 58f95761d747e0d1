# Open the page of `qkv attention --html` in headless Chromium and check that it renders: the DOM
# after its script ran holds one heatmap per layer and head and one menu entry per input, the
# browser logs no console message (no error, no warning: the page logs nothing when all is well),
# and a screenshot is not blank.
#
#   cmake -DPAGE=<page.html> -DHEATMAPS=<layers × heads> -DEXAMPLES=<inputs> -DPNG_STATS=<png_stats>
#         -DWORK=<scratch dir> -P attention_page.cmake
#
# Without Chromium (Debian: apt-get install chromium) — or without png_stats, which needs libpng —
# it prints "SKIPPED: ..." and ctest reports the test as skipped, never as passed. The environment
# variable QKV_CHROMIUM names another browser binary (or a missing one, to see the skip).
cmake_minimum_required(VERSION 3.25)

if(DEFINED ENV{QKV_CHROMIUM})
  set(chromium "$ENV{QKV_CHROMIUM}")
  if(NOT EXISTS "${chromium}")
    set(chromium "")
  endif()
else()
  find_program(chromium NAMES chromium chromium-browser NO_CACHE)
endif()
if(NOT chromium)
  message("SKIPPED: chromium is not installed (Debian: apt-get install chromium): the page was not rendered")
  return()
endif()
if(NOT PNG_STATS OR NOT EXISTS "${PNG_STATS}")
  message("SKIPPED: png_stats was not built (it needs libpng: apt-get install libpng-dev)")
  return()
endif()
if(NOT EXISTS "${PAGE}")
  message(FATAL_ERROR "${PAGE} does not exist")
endif()

# A fresh profile each time, so that nothing of an earlier run (or of the user's browser) counts.
string(RANDOM LENGTH 8 tag)
set(profile ${WORK}/chromium-profile-${tag})
file(MAKE_DIRECTORY ${profile})
set(flags --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
          --disable-component-update --disable-sync --user-data-dir=${profile})
get_filename_component(page "${PAGE}" ABSOLUTE)

# 1. The DOM after the page's script ran, and the console.
execute_process(COMMAND ${chromium} ${flags} --enable-logging=stderr --v=0 --dump-dom "file://${page}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE dom ERROR_VARIABLE log TIMEOUT 60)
if(NOT rc EQUAL 0)
  file(REMOVE_RECURSE ${profile})
  message(FATAL_ERROR "chromium --dump-dom failed (${rc}):\n${log}")
endif()
string(REGEX MATCHALL "<figure class=\"heatmap\"" maps "${dom}")
list(LENGTH maps nmaps)
string(REGEX MATCHALL "<option value=" options "${dom}")
list(LENGTH options noptions)
string(REGEX MATCHALL "[^\n]*CONSOLE[^\n]*" console "${log}")

# 2. A screenshot, and how much of it is not background.
set(shot ${WORK}/attention_page.png)
file(REMOVE ${shot})
execute_process(COMMAND ${chromium} ${flags} --screenshot=${shot} --window-size=1400,1100 "file://${page}"
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE shot_log TIMEOUT 60)
file(REMOVE_RECURSE ${profile})
if(NOT rc EQUAL 0 OR NOT EXISTS ${shot})
  message(FATAL_ERROR "chromium --screenshot failed (${rc}):\n${shot_log}")
endif()
execute_process(COMMAND ${PNG_STATS} ${shot} RESULT_VARIABLE rc OUTPUT_VARIABLE stats ERROR_VARIABLE stats_err)
if(NOT rc EQUAL 0 OR NOT stats MATCHES "non-white ([0-9.]+), colours ([0-9]+)")
  message(FATAL_ERROR "png_stats ${shot} failed:\n${stats}${stats_err}")
endif()
set(fraction ${CMAKE_MATCH_1})
set(colours ${CMAKE_MATCH_2})
message(STATUS "DOM: ${nmaps} heatmaps, ${noptions} inputs; console: ${console}; screenshot: ${stats}")

set(errors "")
if(NOT nmaps EQUAL HEATMAPS)
  string(APPEND errors "the DOM holds ${nmaps} heatmaps (<figure class=\"heatmap\">), expected ${HEATMAPS}\n")
endif()
if(NOT noptions EQUAL EXAMPLES)
  string(APPEND errors "the input menu has ${noptions} entries, expected ${EXAMPLES}\n")
endif()
if(console)
  string(APPEND errors "the browser console was not silent:\n${console}\n")
endif()
# Heatmaps cover a good part of the window in many shades; a blank or failed page is white.
if(fraction LESS 0.05 OR colours LESS 16)
  string(APPEND errors "the screenshot ${shot} looks blank: ${stats}")
endif()
if(errors)
  message(FATAL_ERROR "${page} did not render as expected:\n${errors}")
endif()
message(STATUS "the page renders: ${nmaps} heatmaps, ${noptions} inputs, no console message, screenshot ${stats}")
