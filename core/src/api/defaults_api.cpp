// The C API of the library's names and defaults (iotstream.h: iots_defaults_json).
#include "common/config_keys.hpp"
#include "iotstream/iotstream.h"

extern "C" IOTS_EXPORT const char *iots_defaults_json(void) {
    try {
        return iotstream::defaults_json().c_str();
    } catch (...) {  // only allocation can fail building it; the header promises a document
        return "{}";
    }
}
