# Checks that the source code a tutorial quotes is still in the source.
#
#   cmake -DREADME=<tutorial README.md> -DROOT=<repository> -P check_quotes.cmake
#
# A quote is a fenced code block right after a line `<!-- quote: PATH -->` (an HTML comment, so
# readers do not see it). The block's text must occur, verbatim, in the file PATH of the repository.
# A README without quotes is an error: a test that checks nothing must not pass.
cmake_minimum_required(VERSION 3.25)
foreach(var README ROOT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_quotes.cmake: -D${var}=... is required")
  endif()
endforeach()

# Read the file whole and split it into lines (file(STRINGS) would drop the empty lines a quote
# may contain).
file(READ ${README} text)
string(REPLACE ";" "\\;" text "${text}")
string(REPLACE "\n" ";" lines "${text}")

set(count 0)
set(failed 0)
set(path "")        # the file the next fenced block quotes
set(inside FALSE)   # inside a quoted block
set(quote "")
foreach(line IN LISTS lines)
  if(inside)
    if(line MATCHES "^```")
      # The block is complete: look for it.
      math(EXPR count "${count} + 1")
      set(file "${ROOT}/${path}")
      if(NOT EXISTS "${file}")
        message(SEND_ERROR "quote ${count}: ${path} does not exist (moved? update the README)")
        math(EXPR failed "${failed} + 1")
      else()
        file(READ "${file}" body)
        string(FIND "${body}" "${quote}" at)
        if(at EQUAL -1)
          message(SEND_ERROR "quote ${count}: ${path} no longer contains these lines (update the README):\n${quote}")
          math(EXPR failed "${failed} + 1")
        else()
          message(STATUS "quote ${count}: found in ${path}")
        endif()
      endif()
      set(inside FALSE)
      set(path "")
    else()
      string(APPEND quote "${line}\n")
    endif()
  elseif(line MATCHES "^<!-- quote: ([^ ]+) -->$")
    set(path "${CMAKE_MATCH_1}")
  elseif(path AND line MATCHES "^```")
    set(inside TRUE)
    set(quote "")
  elseif(path AND NOT line STREQUAL "")
    message(FATAL_ERROR "${README}: a '<!-- quote: ${path} -->' line must be followed by a fenced code block")
  endif()
endforeach()

if(count EQUAL 0)
  message(FATAL_ERROR "${README}: no quotes found (expected '<!-- quote: PATH -->' before a fenced block)")
endif()
if(failed GREATER 0)
  message(FATAL_ERROR "${failed} of ${count} quotes of ${README} are no longer in the source")
endif()
message(STATUS "all ${count} quotes of ${README} are in the source")
