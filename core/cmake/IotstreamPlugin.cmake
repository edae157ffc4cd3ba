# iotstream_add_plugin(<name> SOURCES <files...> [LIBRARIES <libs...>])
# Builds a plugin as the loadable module <name>.so. It sees only plugin.h (iotstream::plugin_abi)
# and never links the core; only its entry symbol is exported. Used by plugins/ in this tree
# (modules land in IOTSTREAM_PLUGIN_OUTPUT_DIR) and, after find_package(iotstream), out of tree
# (modules land in the build folder). Installed to <libdir>/iotstream/plugins, where the host looks.
include_guard(GLOBAL)
include(GNUInstallDirs)
set(IOTSTREAM_PLUGIN_VERSION_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/plugin.map)

function(iotstream_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBRARIES" ${ARGN})
  set(target iotstream_plugin_${name})
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE iotstream::plugin_abi $<TARGET_NAME_IF_EXISTS:iotstream_warnings>
                        ${ARG_LIBRARIES})
  set_target_properties(${target} PROPERTIES
    PREFIX "" OUTPUT_NAME ${name}
    C_STANDARD 99 CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON
    C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
    LINK_DEPENDS ${IOTSTREAM_PLUGIN_VERSION_SCRIPT})
  if(DEFINED IOTSTREAM_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${IOTSTREAM_PLUGIN_OUTPUT_DIR})
  endif()
  target_link_options(${target} PRIVATE
    -Wl,--version-script=${IOTSTREAM_PLUGIN_VERSION_SCRIPT} -Wl,--no-undefined)
  install(TARGETS ${target} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/iotstream/plugins)
endfunction()
