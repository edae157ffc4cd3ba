# iotstream_add_plugin(<name> SOURCES <files...>)
# Builds plugins/<name>/ as a loadable module <name>.so in IOTSTREAM_PLUGIN_OUTPUT_DIR.
# A plugin sees only the plugin ABI header (iotstream::plugin_abi); it never links the core.
function(iotstream_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBRARIES" ${ARGN})
  set(target iotstream_plugin_${name})
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE iotstream::plugin_abi iotstream_warnings ${ARG_LIBRARIES})
  target_compile_features(${target} PRIVATE cxx_std_20)
  set_target_properties(${target} PROPERTIES
    PREFIX "" OUTPUT_NAME ${name}
    LIBRARY_OUTPUT_DIRECTORY ${IOTSTREAM_PLUGIN_OUTPUT_DIR}
    C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  # Only the entry symbol leaves the plugin.
  target_link_options(${target} PRIVATE
    -Wl,--version-script=${PROJECT_SOURCE_DIR}/core/cmake/plugin.map -Wl,--no-undefined)
  install(TARGETS ${target} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/iotstream/plugins)
endfunction()
