# Turn the tutorials' README files into Doxygen pages, and write the front page.
#
#   cmake -DSOURCE_DIR=<repo> -DOUT_DIR=<dir> -DTUTORIALS="01_tensors;02_autograd;..." -P tutorial_pages.cmake
#
# The READMEs are written for GitHub: they link to each other as ../NN_topic/README.md. Here each
# one becomes the page `tutorial_NN_topic`: the title gets that label, links between tutorials
# become Doxygen references, the tutorial's whole program is appended (from its main.cpp), and a
# footer links the previous and next pages, so the learning path can be read front to back.
# OUT_DIR/index.md is docs/index.md.in with the list of tutorials filled in.

cmake_minimum_required(VERSION 3.25)
foreach(var SOURCE_DIR OUT_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "tutorial_pages.cmake: -D${var}=... is required")
  endif()
endforeach()
file(MAKE_DIRECTORY ${OUT_DIR})
# Pages of tutorials that no longer exist (renamed or renumbered) must not survive in a reused build
# directory: Doxygen reads every page in OUT_DIR.
file(GLOB stale_pages ${OUT_DIR}/tutorial_*.md)
if(stale_pages)
  file(REMOVE ${stale_pages})
endif()

# Title of each tutorial: the README's first "# " line, without a leading "Tutorial N — ".
set(titles "")
set(labels "")
foreach(name ${TUTORIALS})
  file(STRINGS ${SOURCE_DIR}/tutorials/${name}/README.md heading REGEX "^# " LIMIT_COUNT 1 ENCODING UTF-8)
  if(NOT heading)
    message(FATAL_ERROR "tutorials/${name}/README.md: the first heading must be a '# Title' line")
  endif()
  string(REGEX REPLACE "^# +" "" heading "${heading}")
  string(REGEX REPLACE "^Tutorial [0-9]+ *(—|-|:) *" "" short "${heading}")
  list(APPEND titles "${short}")
  list(APPEND labels "tutorial_${name}")
endforeach()
list(LENGTH TUTORIALS count)

# The page after the last tutorial: the first "How qkv works" page.
set(after_label "architecture")
set(after_title "How qkv works: the architecture")

set(index 0)
foreach(name ${TUTORIALS})
  list(GET labels ${index} label)
  list(GET titles ${index} title)
  file(READ ${SOURCE_DIR}/tutorials/${name}/README.md text)

  # The first "# Title" line gets the page label (Doxygen takes it as the page title).
  string(FIND "${text}" "\n" eol)
  string(SUBSTRING "${text}" 0 ${eol} first_line)
  string(SUBSTRING "${text}" ${eol} -1 rest)
  set(text "${first_line} {#${label}}${rest}")

  # Links between tutorials and to the tutorial index.
  string(REGEX REPLACE "\\]\\(\\.\\./([0-9][0-9]_[A-Za-z0-9_]+)/README\\.md\\)" "](@ref tutorial_\\1)" text "${text}")
  string(REGEX REPLACE "\\]\\(([0-9][0-9]_[A-Za-z0-9_]+)/README\\.md\\)" "](@ref tutorial_\\1)" text "${text}")
  string(REGEX REPLACE "\\]\\(\\.\\./README\\.md\\)" "](@ref index)" text "${text}")
  string(REGEX REPLACE "\\]\\(\\.\\./targets/README\\.md\\)" "](@ref tutorial_targets)" text "${text}")
  # Links to the "How qkv works" pages (../../docs/pages/NAME.md) become references to their labels,
  # read from each page's first line ("# Title {#label}").
  string(REGEX MATCHALL "\\]\\(\\.\\./\\.\\./docs/pages/[A-Za-z0-9_]+\\.md\\)" page_links "${text}")
  list(REMOVE_DUPLICATES page_links)
  foreach(link ${page_links})
    string(REGEX REPLACE "^.*/([A-Za-z0-9_]+)\\.md\\)$" "\\1" page "${link}")
    if(NOT EXISTS ${SOURCE_DIR}/docs/pages/${page}.md)
      message(FATAL_ERROR "tutorials/${name}/README.md links to docs/pages/${page}.md, which does not exist")
    endif()
    file(STRINGS ${SOURCE_DIR}/docs/pages/${page}.md page_heading LIMIT_COUNT 1 ENCODING UTF-8)
    if(NOT page_heading MATCHES "{#([A-Za-z0-9_]+)}")
      message(FATAL_ERROR "docs/pages/${page}.md: the first line must end with a {#label}")
    endif()
    string(REPLACE "${link}" "](@ref ${CMAKE_MATCH_1})" text "${text}")
  endforeach()
  # The lab track has no pages on this site: its links name the folder to open instead.
  string(REGEX REPLACE "\\[([^]]*)\\]\\(\\.\\./labs/README\\.md\\)" "\\1 (`tutorials/labs/`)" text "${text}")

  # The whole program.
  if(EXISTS ${SOURCE_DIR}/tutorials/${name}/main.cpp)
    string(APPEND text "\n\n## The whole program {#${label}_program}\n\n"
                       "This is `tutorials/${name}/main.cpp`; build it with the project and run "
                       "`build/tutorials/${name}`.\n\n\\include{lineno} ${name}/main.cpp\n")
  endif()

  # Previous / up / next.
  set(nav "\n\n<hr>\n\n")
  if(index GREATER 0)
    math(EXPR prev "${index} - 1")
    list(GET labels ${prev} prev_label)
    list(GET titles ${prev} prev_title)
    string(APPEND nav "Previous: [${index} — ${prev_title}](@ref ${prev_label}) · ")
  endif()
  string(APPEND nav "Up: [the learning path](@ref index) · ")
  math(EXPR next "${index} + 1")
  if(next LESS count)
    list(GET labels ${next} next_label)
    list(GET titles ${next} next_title)
    math(EXPR next_number "${next} + 1")
    string(APPEND nav "**Next: [${next_number} — ${next_title}](@ref ${next_label})**\n")
  else()
    string(APPEND nav "**Next: [${after_title}](@ref ${after_label})**\n")
  endif()
  string(APPEND text "${nav}")

  file(WRITE ${OUT_DIR}/${label}.md "${text}")
  math(EXPR index "${index} + 1")
endforeach()

# The training-targets program (tutorials/targets): a page of its own, outside the numbered path.
if(EXISTS ${SOURCE_DIR}/tutorials/targets/README.md)
  file(READ ${SOURCE_DIR}/tutorials/targets/README.md text)
  string(FIND "${text}" "\n" eol)
  string(SUBSTRING "${text}" 0 ${eol} first_line)
  string(SUBSTRING "${text}" ${eol} -1 rest)
  set(text "${first_line} {#tutorial_targets}${rest}")
  string(REGEX REPLACE "\\]\\(\\.\\./([0-9][0-9]_[A-Za-z0-9_]+)/README\\.md\\)" "](@ref tutorial_\\1)" text "${text}")
  string(REGEX REPLACE "\\]\\(\\.\\./README\\.md\\)" "](@ref index)" text "${text}")
  string(APPEND text "\n\n<hr>\n\nUp: [the learning path](@ref index)\n")
  file(WRITE ${OUT_DIR}/tutorial_targets.md "${text}")
endif()

# The front page: the numbered list of tutorials, and a line about the ones still to come.
set(QKV_TUTORIAL_LIST "")
set(index 0)
foreach(name ${TUTORIALS})
  list(GET labels ${index} label)
  string(APPEND QKV_TUTORIAL_LIST "- @subpage ${label}\n")
  math(EXPR index "${index} + 1")
endforeach()
if(count EQUAL 0)
  set(QKV_TUTORIAL_LIST "The tutorials are being written; each appears here as soon as it lands.\n")
elseif(count LESS 14)
  math(EXPR first_missing "${count} + 1")
  string(APPEND QKV_TUTORIAL_LIST "\nTutorials ${first_missing}–14 are being written; each appears here, in order, as "
                                  "soon as its directory lands in `tutorials/`.\n")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/index.md.in ${OUT_DIR}/index.md @ONLY)
