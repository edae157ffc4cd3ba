#include "metrics/metrics_route.hpp"

#include <cstddef>
#include <stdexcept>

namespace iotstream_host::metrics {

void add_metrics_route(http::Router &router, const iots_api_t *api, iots_pipeline_t *pipeline, iots_ingest_t *ingest,
                       MoreMetrics more) {
    if (api->struct_size < offsetof(iots_api_t, metrics_prometheus) + sizeof(void *))
        throw std::runtime_error("the loaded libiotstream predates ABI 1.3 (no iots_metrics_prometheus)");
    router.add("GET", "/metrics", [api, pipeline, ingest, more = std::move(more)](const http::Request &) {
        std::string page(64 * 1024, '\0');
        size_t needed = 0;
        iots_err_t err = api->metrics_prometheus(pipeline, ingest, page.data(), page.size(), &needed);
        if (err == IOTS_ERR_BUFFER_TOO_SMALL) {  // counters may add labels between the two calls: retry once bigger
            page.resize(needed + 4096);
            err = api->metrics_prometheus(pipeline, ingest, page.data(), page.size(), &needed);
        }
        if (err != IOTS_OK) return http::error_response(500, std::string("metrics: ") + api->err_str(err));
        page.resize(needed - 1);
        if (more) page += more();
        return http::Response{200, "text/plain; version=0.0.4; charset=utf-8", std::move(page), {}, nullptr};
    });
}

std::unique_ptr<http::Server> serve_metrics(const std::string &listen, const iots_api_t *api,
                                            iots_pipeline_t *pipeline, iots_ingest_t *ingest, MoreMetrics more) {
    const auto [host, port] = http::split_listen(listen, "--metrics-listen");
    http::Router router;
    add_metrics_route(router, api, pipeline, ingest, std::move(more));
    http::ServerLimits limits;
    limits.max_connections = 64;
    limits.threads = 1;
    auto server = std::make_unique<http::Server>(host, port, limits, std::move(router));
    server->start();
    return server;
}

}  // namespace iotstream_host::metrics
