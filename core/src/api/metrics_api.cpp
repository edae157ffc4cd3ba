// The C API of metrics (iotstream.h: iots_metrics_prometheus), rendered from the handles'
// own stats by metrics/prometheus.cpp.
#include "api/ingest_handle.hpp"
#include "api/pipeline_handle.hpp"
#include "metrics/prometheus.hpp"

using namespace iotstream;

extern "C" IOTS_EXPORT iots_err_t iots_metrics_prometheus(iots_pipeline_t *pipeline, iots_ingest_t *ingest,
                                                          char *buf, size_t buf_size, size_t *needed) {
    return guard(nullptr, 0, [&] {
        if (!pipeline && !ingest) throw Error(IOTS_ERR_INVALID_ARG, "pipeline and ingest are both NULL");
        metrics::PrometheusText out;
        if (pipeline) metrics::render_pipeline(out, pipeline->pipeline->stats());
        if (ingest) metrics::render_ingest(out, ingest->ingestor->stats());
        return write_text_out(out.text(), buf, buf_size, needed);
    });
}
