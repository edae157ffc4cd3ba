// The C API of the pipeline (iotstream.h: iots_pipeline_*).
#include "api/pipeline_handle.hpp"

using namespace iotstream;

extern "C" {

IOTS_EXPORT iots_err_t iots_pipeline_new(const char *config_json, iots_pipeline_t **pipelinep, char *errstr,
                                         size_t errstr_size) {
    return guard(errstr, errstr_size, [&] {
        require_arg(pipelinep, "pipelinep");
        *pipelinep = nullptr;
        Json doc = parse_config(config_json, "pipeline config");
        auto handle = std::make_unique<iots_pipeline_s>();
        handle->pipeline = std::make_unique<Pipeline>(doc);
        *pipelinep = handle.release();
    });
}

IOTS_EXPORT iots_err_t iots_pipeline_start(iots_pipeline_t *pipeline, char *errstr, size_t errstr_size) {
    return guard(errstr, errstr_size, [&] {
        require_arg(pipeline, "pipeline");
        pipeline->pipeline->start();
    });
}

IOTS_EXPORT iots_err_t iots_pipeline_set_output_tap(iots_pipeline_t *pipeline, iots_output_tap_fn tap,
                                                    void *opaque, char *errstr, size_t errstr_size) {
    return guard(errstr, errstr_size, [&] {
        require_arg(pipeline, "pipeline");
        pipeline->pipeline->set_output_tap(tap, opaque);
    });
}

IOTS_EXPORT iots_err_t iots_pipeline_run_bounded(iots_pipeline_t *pipeline, int timeout_ms, char *errstr,
                                                 size_t errstr_size) {
    return guard(errstr, errstr_size, [&] {
        require_arg(pipeline, "pipeline");
        pipeline->pipeline->run_bounded(timeout_ms);
    });
}

IOTS_EXPORT iots_err_t iots_pipeline_stop(iots_pipeline_t *pipeline, int close_windows, int timeout_ms,
                                          char *errstr, size_t errstr_size) {
    return guard(errstr, errstr_size, [&] {
        require_arg(pipeline, "pipeline");
        if (close_windows == IOTS_STOP_AS_CONFIGURED)
            pipeline->pipeline->stop(std::nullopt, timeout_ms);
        else
            pipeline->pipeline->stop(close_windows != 0, timeout_ms);
    });
}

IOTS_EXPORT iots_err_t iots_pipeline_stats_json(iots_pipeline_t *pipeline, char *buf, size_t buf_size,
                                                size_t *needed) {
    return guard(nullptr, 0, [&] {
        require_arg(pipeline, "pipeline");
        return write_text_out(pipeline->pipeline->stats().dump(), buf, buf_size, needed);
    });
}

IOTS_EXPORT void iots_pipeline_destroy(iots_pipeline_t *pipeline) {
    try {
        delete pipeline;
    } catch (...) {
    }
}

}  // extern "C"
