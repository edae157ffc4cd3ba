// The C API of the library's integer rule (iotstream.h: iots_parse_int): the one conversion of
// configured integers (common/checked_int.hpp), for hosts' flags and files.
#include <string>

#include "common/checked_int.hpp"
#include "common/error.hpp"
#include "iotstream/iotstream.h"

extern "C" IOTS_EXPORT iots_err_t iots_parse_int(const char *text, int64_t min, int64_t max, int64_t *out,
                                                 char *errstr, size_t errstr_size) {
    return iotstream::guard(errstr, errstr_size, [&] {
        if (text == nullptr || out == nullptr)
            throw iotstream::Error(IOTS_ERR_INVALID_ARG, "iots_parse_int: text and out must not be NULL");
        if (min > max)
            throw iotstream::Error(IOTS_ERR_INVALID_ARG, "iots_parse_int: min " + std::to_string(min) +
                                                             " is greater than max " + std::to_string(max));
        std::string why;
        if (!iotstream::checked_int_text(text, min, max, *out, why)) throw iotstream::Error(IOTS_ERR_INVALID_ARG, why);
    });
}
