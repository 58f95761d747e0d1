# Data sources of the qkv library (included from the top-level CMakeLists.txt): toy tasks,
# vocabularies, batches, the character-level corpus.
target_sources(qkv PRIVATE
  src/data/vocab.cpp
  src/data/tasks.cpp
  src/data/batch.cpp
  src/data/corpus.cpp
)
# data_file() finds the shipped data/ files: in the source tree when run from a build directory,
# in share/qkv/data after `cmake --install`, or wherever $QKV_DATA_DIR points.
set_source_files_properties(src/data/corpus.cpp PROPERTIES COMPILE_DEFINITIONS
  "QKV_SOURCE_DATA_DIR=\"${PROJECT_SOURCE_DIR}/data\";QKV_INSTALL_DATA_DIR=\"${CMAKE_INSTALL_FULL_DATADIR}/qkv/data\"")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/data/ DESTINATION ${CMAKE_INSTALL_DATADIR}/qkv/data)
