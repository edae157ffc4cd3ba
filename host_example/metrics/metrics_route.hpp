// GET /metrics for iotstream-host (issue 15): the core's Prometheus page
// (iots_metrics_prometheus, through the C API table only) of the running pipeline and/or the
// gateway's ingestion handle, on the gateway's server or on a server of its own.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "http/server.hpp"
#include "iotstream/iotstream.h"

namespace iotstream_host::metrics {

// More families in the Prometheus text format, appended to the core's page (e.g. the
// gateway's MQTT counters, which live in the host); may return "".
using MoreMetrics = std::function<std::string()>;

// Adds GET /metrics. `pipeline` and `ingest` (either may be null, not both) must stay valid
// while the router's server runs.
void add_metrics_route(http::Router &router, const iots_api_t *api, iots_pipeline_t *pipeline, iots_ingest_t *ingest,
                       MoreMetrics more = {});

// A started server with only GET /metrics on `listen` (HOST:PORT; port 0: any free port).
// Throws std::runtime_error. Stop it before the handles go.
std::unique_ptr<http::Server> serve_metrics(const std::string &listen, const iots_api_t *api,
                                            iots_pipeline_t *pipeline, iots_ingest_t *ingest, MoreMetrics more = {});

}  // namespace iotstream_host::metrics
