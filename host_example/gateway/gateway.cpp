#include "gateway/gateway.hpp"

#include "app/library.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <tuple>

namespace iotstream_host::gateway {

using Json = nlohmann::json;

const char *const kGatewayUsage = R"(Gateway (iotstream-host gateway; or --gateway-listen with the default run):
  --listen HOST:PORT      where `gateway` listens (default 127.0.0.1:8080; port 0: any)
  --gateway-listen HOST:PORT  the default run also serves the gateway there
  --device-tokens FILE    lines "<device id> <token>": each device's own token
  --shared-token-file FILE  first line: a token every device may use (>= 16 characters)
  --device-rate R         readings/s per device (default 10)
  --device-burst B        readings a device may send at once (default 20)
  --max-body-bytes N      larger requests get 413 (default 1048576)
  --max-connections N     more get 503 and are closed (default 1024)
  --read-timeout-ms MS    a request must arrive within this; idle connections close after
                          it (default 10000)
  --http-threads N        HTTP I/O threads (default 2)
  Devices POST /v1/readings with "Authorization: Bearer <token>" and "X-Device-Id: <id>";
  the body is one reading, a JSON array of readings, or NDJSON. See docs/gateway.md.
)";

namespace {

double number(const std::string &flag, const std::string &text, double min) {
    char *end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(value) || value < min)
        throw std::runtime_error(flag + " needs a number >= " + std::to_string(min) + ", got '" + text + "'");
    return value;
}

constexpr size_t kMaxDeviceIdBytes = 256;
constexpr const char *kGatewayBatchBytes = "1048576";
constexpr char kAcceptedResult[] = "{\"status\":\"accepted\"}";

}  // namespace

bool parse_gateway_flag(const std::string &flag, const std::function<std::string()> &next, GatewayOptions &o) {
    if (flag == "--listen" || flag == "--gateway-listen") o.listen = next();
    else if (flag == "--device-tokens") o.device_tokens = next();
    else if (flag == "--shared-token-file") o.shared_token_file = next();
    else if (flag == "--device-rate") o.device_rate = number(flag, next(), 1e-6);
    else if (flag == "--device-burst") o.device_burst = number(flag, next(), 1);
    // Integers by the core's one rule (iots_parse_int): 1.5 or 1e300 are refused, not truncated.
    else if (flag == "--max-body-bytes")
        o.max_body_bytes = static_cast<size_t>(integer_flag(flag, next(), 64, int64_t{1} << 30));
    else if (flag == "--max-connections")
        o.max_connections = static_cast<size_t>(integer_flag(flag, next(), 1, 1000000));
    else if (flag == "--read-timeout-ms")
        o.read_timeout_ms = static_cast<int>(integer_flag(flag, next(), 10, INT32_MAX));
    else if (flag == "--http-threads")
        o.http_threads = static_cast<int>(integer_flag(flag, next(), 1, 1024));
    else return mqtt::parse_mqtt_flag(flag, next, o.mqtt);
    return true;
}

Gateway::Gateway(const iots_api_t *api, const GatewayOptions &options, const std::string &bootstrap,
                 Json ingest_config, const ExtraRoutes &extra_routes)
    : api_(api), auth_(options.device_tokens, options.shared_token_file, !options.mqtt.broker.empty()) {
    const std::string listen = options.listen.empty() ? "127.0.0.1:8080" : options.listen;
    uint16_t port = 0;
    std::tie(host_, port) = http::split_listen(listen, "--listen");

    if (!ingest_config.is_object()) throw std::runtime_error("the config's \"ingest\" must be an object");
    if (options.device_rate > 0) ingest_config["rate"] = options.device_rate;
    if (options.device_burst > 0) ingest_config["burst"] = options.device_burst;
    ingest_config["max_payload_bytes"] = options.max_body_bytes;
    if (!ingest_config.contains("dead_letter_topic"))  // the core's dead-letter topic (iots_defaults_json)
        ingest_config["dead_letter_topic"] = Json::parse(api_->defaults_json())["topics"]["dlq"];
    Json &kafka = ingest_config["producer"]["kafka"];
    if (!kafka.contains("bootstrap.servers")) kafka["bootstrap.servers"] = bootstrap;
    // Many small readings from many devices: batches of up to 1 MB per partition (the seed's
    // 16 KB held ~60 readings, so a produce request per 60) unless the config says otherwise.
    if (!kafka.contains("batch.size")) kafka["batch.size"] = kGatewayBatchBytes;
    char errstr[512];
    if (api_->ingest_new(ingest_config.dump().c_str(), nullptr, &ingest_, errstr, sizeof errstr) != IOTS_OK)
        throw std::runtime_error(std::string("ingestion: ") + errstr);

    http::ServerLimits limits;
    limits.max_body_bytes = options.max_body_bytes;
    limits.max_connections = options.max_connections;
    limits.read_timeout = std::chrono::milliseconds(options.read_timeout_ms);
    limits.threads = options.http_threads;
    http::Router router;
    add_routes(router);
    if (extra_routes) extra_routes(router, ingest_, *this);
    try {
        server_ = std::make_unique<http::Server>(host_, port, limits, std::move(router));
    } catch (...) {
        api_->ingest_close(ingest_, 10000);
        throw;
    }
    server_->start();
    if (!options.mqtt.broker.empty()) {
        try {
            mqtt::MqttOptions mqtt_options = options.mqtt;
            if (mqtt_options.broker == "start") {
                own_mqtt_broker_ = std::make_unique<mqtt::MosquittoProcess>();
                mqtt_options.broker = own_mqtt_broker_->address();
            }
            mqtt_ = std::make_unique<mqtt::MqttIngest>(api_, ingest_, mqtt_options);
        } catch (...) {
            server_->stop();
            api_->ingest_close(ingest_, 10000);
            ingest_ = nullptr;
            throw;
        }
    }
}

Gateway::~Gateway() { stop(); }

void Gateway::stop() {
    if (!ingest_) return;
    if (mqtt_) mqtt_->stop();  // no message callback runs after this
    server_->stop();  // no handler runs after this: the ingestion handle can go
    final_ingest_stats_ = stats().value("ingest", Json::object());
    api_->ingest_close(ingest_, 10000);
    ingest_ = nullptr;
    if (own_mqtt_broker_) own_mqtt_broker_->stop();
}

std::string Gateway::mqtt_broker() const { return mqtt_ ? mqtt_->broker() : std::string(); }

bool Gateway::wait_mqtt_subscribed(int timeout_ms) const { return !mqtt_ || mqtt_->wait_subscribed(timeout_ms); }

std::string Gateway::url() const {
    const bool v6 = host_.find(':') != std::string::npos;
    return "http://" + (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(server_->port());
}

void Gateway::add_routes(http::Router &router) {
    router.add("POST", "/v1/readings", [this](const http::Request &request) { return post_readings(request); });
    router.add("GET", "/v1/gateway/stats", [this](const http::Request &) {
        return http::Response{200, "application/json", stats().dump() + "\n", {}, nullptr};
    });
}

http::Response Gateway::counted(http::Response response) {
    by_status_[std::clamp(response.status, 0, 599)].fetch_add(1, std::memory_order_relaxed);
    return response;
}

// One answer for the whole request, from its readings' results:
//   202 when any reading was accepted (the others' results say why not; Retry-After when
//       some were rate limited), else
//   403 a foreign sensor_id (nothing produced), 503 backpressure, 429 rate limited,
//   413 every reading (or the payload) too large, 400 invalid.
http::Response Gateway::post_readings(const http::Request &request) {
    const std::string_view device = request.header("X-Device-Id");
    const std::string_view authorization = request.header("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    const bool has_bearer = authorization.size() > kBearer.size() && authorization.substr(0, kBearer.size()) == kBearer;
    if (device.empty() || device.size() > kMaxDeviceIdBytes || !has_bearer ||
        !auth_.check(device, authorization.substr(kBearer.size()))) {
        unauthenticated_.fetch_add(1, std::memory_order_relaxed);
        http::Response response = http::error_response(
            401, device.empty() || device.size() > kMaxDeviceIdBytes
                     ? "send the device id in X-Device-Id (1 to 256 bytes)"
                     : "send the device's token as 'Authorization: Bearer <token>'");
        response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"iotstream\"");
        return counted(std::move(response));
    }
    if (request.body.empty()) return counted(http::error_response(400, "empty body: send one reading, an array or NDJSON"));

    const std::string device_id(device);  // NUL-terminated for the C API
    iots_ingest_reply_t *reply = nullptr;
    char errstr[512];
    if (api_->ingest_submit(ingest_, device_id.c_str(), request.body.data(), request.body.size(), &reply, errstr,
                            sizeof errstr) != IOTS_OK)
        return counted(http::error_response(500, std::string("ingestion failed: ") + errstr));

    // The body is written by hand in nlohmann's key order (sorted), the same bytes as dumping
    // {"accepted", "error"?, "rejected", "results"}: an accepted reading's result is a constant,
    // and only refusals (rare, with text from the payload) go through nlohmann for escaping.
    // Building one JSON object per reading cost more than ingesting it (perf, 100-reading
    // batches).
    size_t by_status[IOTS_INGEST__END] = {};
    int64_t retry_after_ms = 0;
    const iots_ingest_item_t *first_refusal = nullptr;
    const size_t count = api_->ingest_reply_count(reply);
    std::string results;
    results.reserve(count * sizeof kAcceptedResult + 2);
    for (size_t i = 0; i < count; ++i) {
        const iots_ingest_item_t *item = api_->ingest_reply_item(reply, i);
        ++by_status[std::clamp<int>(item->status, 0, IOTS_INGEST__END - 1)];
        if (i > 0) results += ',';
        if (item->status == IOTS_INGEST_ACCEPTED) {
            results += kAcceptedResult;
            continue;
        }
        if (first_refusal == nullptr) first_refusal = item;
        Json result = {{"status", api_->ingest_status_name(item->status)},
                       {"reason", item->reason},
                       {"detail", item->detail}};
        if (item->status == IOTS_INGEST_RATE_LIMITED) {
            result["retry_after_ms"] = item->retry_after_ms;
            retry_after_ms = std::max(retry_after_ms, item->retry_after_ms);
        }
        results += result.dump();
    }
    int status = 202;
    std::string error;
    if (by_status[IOTS_INGEST_ACCEPTED] == 0) {
        if (by_status[IOTS_INGEST_FORBIDDEN] > 0) status = 403;
        else if (by_status[IOTS_INGEST_BACKPRESSURE] > 0) status = 503;
        else if (by_status[IOTS_INGEST_RATE_LIMITED] > 0) status = 429;
        else if (by_status[IOTS_INGEST_TOO_LARGE] == count) status = 413;
        else status = 400;
        if (first_refusal != nullptr) error = Json(std::string(first_refusal->reason) + ": " + first_refusal->detail).dump();
    }
    api_->ingest_reply_destroy(reply);

    std::string body;
    body.reserve(results.size() + error.size() + 64);
    body += "{\"accepted\":";
    body += std::to_string(by_status[IOTS_INGEST_ACCEPTED]);
    if (!error.empty()) {
        body += ",\"error\":";
        body += error;
    }
    body += ",\"rejected\":";
    body += std::to_string(count - by_status[IOTS_INGEST_ACCEPTED]);
    body += ",\"results\":[";
    body += results;
    body += "]}\n";
    http::Response response{status, "application/json", std::move(body), {}, nullptr};
    if (retry_after_ms > 0)  // whole seconds, rounded up: a client retrying then finds a token
        response.headers.emplace_back("Retry-After", std::to_string((retry_after_ms + 999) / 1000));
    else if (status == 503)
        response.headers.emplace_back("Retry-After", "1");
    return counted(std::move(response));
}

std::string Gateway::metrics_text() const { return mqtt_ ? mqtt_->prometheus() : std::string(); }

Json Gateway::stats() const {
    const http::ServerStats &server = server_->stats();
    Json responses = Json::object();
    for (int status = 0; status < 600; ++status)
        if (uint64_t n = by_status_[status].load(std::memory_order_relaxed); n > 0) responses[std::to_string(status)] = n;
    Json out = {{"http",
                 {{"connections_accepted", server.connections_accepted.load()},
                  {"connections_refused", server.connections_refused.load()},
                  {"connections_open", server.connections_open.load()},
                  {"requests", server.requests.load()},
                  {"timeouts", server.timeouts.load()},
                  {"malformed", server.malformed.load()},
                  {"bodies_too_large", server.bodies_too_large.load()},
                  {"unauthenticated", unauthenticated_.load()},
                  {"responses", responses}}}};
    iots_ingest_stats_t s{};
    s.struct_size = sizeof s;
    if (ingest_ && api_->ingest_get_stats(ingest_, &s) == IOTS_OK)
        out["ingest"] = {{"payloads", s.payloads},         {"accepted", s.accepted},
                         {"invalid", s.invalid},           {"rate_limited", s.rate_limited},
                         {"backpressure", s.backpressure}, {"too_large", s.too_large},
                         {"forbidden", s.forbidden},       {"devices_tracked", s.devices_tracked}};
    else
        out["ingest"] = final_ingest_stats_;
    if (mqtt_) out["mqtt"] = mqtt_->stats();
    return out;
}

}  // namespace iotstream_host::gateway
