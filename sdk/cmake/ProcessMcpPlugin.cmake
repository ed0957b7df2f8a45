# pmcp_add_plugin(<target> SOURCES <src>... [OUTPUT_NAME <name>] [OUTPUT_DIRECTORY <dir>])
#
# Builds a process-mcp plugin: a MODULE library with hidden visibility, a linker version script
# that exports only the entry symbol `pmcp_plugin_entry`, and no "lib" prefix, so the file is
# `<name>.so` (the core finds plugin "host" as `pmcp-host.so`, so name yours `pmcp-<id>`).
include_guard(GLOBAL)

function(pmcp_add_plugin target)
  cmake_parse_arguments(ARG "" "OUTPUT_NAME;OUTPUT_DIRECTORY" "SOURCES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "pmcp_add_plugin(${target}): SOURCES is required")
  endif()
  # Resolved here, not at include time: a variable set when this file was included is not
  # visible from other directories (plugins/<name>/ in the tree, subdirectories out of tree).
  set(map "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/pmcp-plugin.map")
  add_library(${target} MODULE ${ARG_SOURCES})
  if(TARGET pmcp::sdk)
    target_link_libraries(${target} PRIVATE pmcp::sdk)
  endif()
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(ARG_OUTPUT_NAME)
    set_target_properties(${target} PROPERTIES OUTPUT_NAME "${ARG_OUTPUT_NAME}")
  endif()
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ARG_OUTPUT_DIRECTORY}")
  endif()
  target_link_options(${target} PRIVATE "LINKER:--version-script=${map}"
                      "LINKER:--no-undefined")
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS "${map}")
endfunction()
