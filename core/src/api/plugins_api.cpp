// The C API of the plugin folder (iotstream.h: iots_plugins_describe_json).
#include <cstring>

#include "plugin_host/plugin_directory.hpp"

namespace fs = std::filesystem;

extern "C" IOTS_EXPORT iots_err_t iots_plugins_describe_json(const char *dir, char *buf,
                                                             size_t buf_size, size_t *needed,
                                                             char *errstr, size_t errstr_size) {
    return iotstream::guard(errstr, errstr_size, [&]() -> iots_err_t {
        if (buf == nullptr && buf_size != 0)
            throw iotstream::Error(IOTS_ERR_INVALID_ARG, "argument 'buf' is NULL but buf_size is " +
                                                             std::to_string(buf_size));
        const fs::path folder = dir != nullptr ? fs::path(dir) : iotstream::default_plugin_dir();
        const std::string text = iotstream::describe_plugins(folder).dump();
        if (needed != nullptr) *needed = text.size() + 1;
        if (buf_size < text.size() + 1) {
            iotstream::write_errstr(errstr, errstr_size,
                                    "buffer of " + std::to_string(buf_size) + " bytes is too small: " +
                                        std::to_string(text.size() + 1) + " needed");
            return IOTS_ERR_BUFFER_TOO_SMALL;
        }
        std::memcpy(buf, text.c_str(), text.size() + 1);
        iotstream::write_errstr(errstr, errstr_size, "");
        return IOTS_OK;
    });
}
