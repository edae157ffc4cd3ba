# The version and ABI numbers are written once, in the public headers; CMake reads them here
# (before project(), which takes the version):
#   IOTSTREAM_VERSION                  major.minor.patch of IOTS_VERSION (iotstream.h, hex MM.mm.rr.xx)
#   IOTSTREAM_ABI_MAJOR/_MINOR         IOTS_ABI_MAJOR/MINOR (iotstream.h): the core C API, SOVERSION
#   IOTSTREAM_PLUGIN_ABI_MAJOR/_MINOR  IOTS_PLUGIN_ABI_MAJOR/MINOR (plugin.h)
# tests/abi/check_versions.py checks that the build, the library and the Python package agree.

# Sets `out` to the value of `#define <name> <number>` in `header` (a decimal or 0x number).
function(iotstream_header_number header name out)
  file(STRINGS ${header} lines REGEX "^#define ${name} ")
  if(NOT lines MATCHES "^#define ${name} +(0x[0-9a-fA-F]+|[0-9]+)( |$)")
    message(FATAL_ERROR "${header}: no '#define ${name} <number>' line")
  endif()
  math(EXPR value "${CMAKE_MATCH_1}")  # hex to decimal
  set(${out} ${value} PARENT_SCOPE)
endfunction()

block(SCOPE_FOR VARIABLES PROPAGATE IOTSTREAM_VERSION IOTSTREAM_ABI_MAJOR IOTSTREAM_ABI_MINOR
      IOTSTREAM_PLUGIN_ABI_MAJOR IOTSTREAM_PLUGIN_ABI_MINOR)
  set(include_dir ${CMAKE_CURRENT_LIST_DIR}/../include/iotstream)
  iotstream_header_number(${include_dir}/iotstream.h IOTS_VERSION hex)
  math(EXPR major "(${hex} >> 24) & 0xff")
  math(EXPR minor "(${hex} >> 16) & 0xff")
  math(EXPR patch "(${hex} >> 8) & 0xff")
  set(IOTSTREAM_VERSION ${major}.${minor}.${patch})
  iotstream_header_number(${include_dir}/iotstream.h IOTS_ABI_MAJOR IOTSTREAM_ABI_MAJOR)
  iotstream_header_number(${include_dir}/iotstream.h IOTS_ABI_MINOR IOTSTREAM_ABI_MINOR)
  iotstream_header_number(${include_dir}/plugin.h IOTS_PLUGIN_ABI_MAJOR IOTSTREAM_PLUGIN_ABI_MAJOR)
  iotstream_header_number(${include_dir}/plugin.h IOTS_PLUGIN_ABI_MINOR IOTSTREAM_PLUGIN_ABI_MINOR)
endblock()
