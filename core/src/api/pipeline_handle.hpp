// The pipeline handle behind iots_pipeline_t, and the text-out buffer convention of the
// *_json / *_prometheus functions, shared by the C API files that use them.
#pragma once

#include <cstring>
#include <memory>
#include <string>

#include "pipeline/pipeline.hpp"

struct iots_pipeline_s {
    std::unique_ptr<iotstream::Pipeline> pipeline;
};

namespace iotstream {
// Copies `text` with its NUL into buf; *needed (may be NULL) always gets the size it takes.
inline iots_err_t write_text_out(const std::string &text, char *buf, size_t buf_size, size_t *needed) {
    if (needed) *needed = text.size() + 1;
    if (!buf || buf_size < text.size() + 1) return IOTS_ERR_BUFFER_TOO_SMALL;
    std::memcpy(buf, text.c_str(), text.size() + 1);
    return IOTS_OK;
}
}  // namespace iotstream
