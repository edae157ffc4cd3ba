#include "dashboard/dashboard.hpp"

#include "metrics/metrics_route.hpp"

#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <stdexcept>

namespace iotstream_host::dashboard {

using Json = nlohmann::json;

extern const char *const kPage;  // dashboard_page.cpp, generated from index.html

namespace {

std::string query_value(std::string_view query, std::string_view name) {
    // key=value&...; only what the page sends (no percent-decoding beyond '+' and %XX).
    size_t at = 0;
    while (at <= query.size()) {
        size_t end = query.find('&', at);
        std::string_view pair = query.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
        if (pair.substr(0, pair.find('=')) == name && pair.find('=') != std::string_view::npos) {
            std::string out;
            std::string_view raw = pair.substr(pair.find('=') + 1);
            for (size_t i = 0; i < raw.size(); ++i) {
                if (raw[i] == '+') out.push_back(' ');
                else if (raw[i] == '%' && i + 2 < raw.size() && std::isxdigit(static_cast<unsigned char>(raw[i + 1])) &&
                         std::isxdigit(static_cast<unsigned char>(raw[i + 2]))) {
                    out.push_back(static_cast<char>(std::stoi(std::string(raw.substr(i + 1, 2)), nullptr, 16)));
                    i += 2;
                } else out.push_back(raw[i]);
            }
            return out;
        }
        if (end == std::string_view::npos) break;
        at = end + 1;
    }
    return {};
}

}  // namespace

Dashboard::Dashboard(const iots_api_t *api, iots_pipeline_t *pipeline, Json plugins,
                     std::function<uint64_t()> produced, Limits limits)
    : api_(api), pipeline_(pipeline), plugins_(std::move(plugins)), produced_(std::move(produced)), limits_(limits) {
    if (api_->struct_size < offsetof(iots_api_t, pipeline_set_output_tap) + sizeof(void *))
        throw std::runtime_error("the loaded libiotstream predates ABI 1.4 (no output tap): the dashboard needs it");
    sampler_ = std::thread([this] { sample_loop(); });
}

Dashboard::~Dashboard() {
    stopping_ = true;
    if (sampler_.joinable()) sampler_.join();
}

void Dashboard::attach() {
    char errstr[512] = "";
    if (api_->pipeline_set_output_tap(pipeline_, &Dashboard::tap, this, errstr, sizeof errstr) != IOTS_OK)
        throw std::runtime_error(std::string("dashboard: ") + errstr);
}

// On the library's delivery thread: copy and return.
void Dashboard::tap(void *opaque, const iots_output_record_t *record) {
    auto *self = static_cast<Dashboard *>(opaque);
    std::string_view output(record->output);
    std::string_view key(record->key ? record->key : "", record->key ? record->key_len : 0);
    std::string_view value(record->value ? record->value : "", record->value ? record->value_len : 0);
    std::lock_guard lock(self->mutex_);
    auto counted = self->tapped_.find(output);
    if (counted == self->tapped_.end()) counted = self->tapped_.emplace(std::string(output), 0).first;
    ++counted->second;
    if (output == "windows") {
        auto it = self->latest_window_.find(key);
        if (it != self->latest_window_.end()) it->second.assign(value);
        else if (self->latest_window_.size() < self->limits_.max_sensors) self->latest_window_.emplace(key, value);
        else ++self->sensors_not_kept_;
    } else if (output == "alerts") {
        self->alerts_.emplace_back(++self->alert_sequence_, std::string(value));
        if (self->alerts_.size() > self->limits_.max_alerts) self->alerts_.pop_front();
    }
}

Json Dashboard::pipeline_stats() const {
    std::string buf(16 * 1024, '\0');
    size_t needed = 0;
    iots_err_t err = api_->pipeline_stats_json(pipeline_, buf.data(), buf.size(), &needed);
    if (err == IOTS_ERR_BUFFER_TOO_SMALL) {
        buf.resize(needed + 1024);
        err = api_->pipeline_stats_json(pipeline_, buf.data(), buf.size(), &needed);
    }
    if (err != IOTS_OK) return Json::object();
    return Json::parse(buf.c_str(), nullptr, false);
}

void Dashboard::sample_loop() {
    const auto start = std::chrono::steady_clock::now();
    auto next = start;
    while (!stopping_) {
        next += std::chrono::seconds(1);
        while (!stopping_ && std::chrono::steady_clock::now() < next)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (stopping_) break;
        Json stats = pipeline_stats();
        if (!stats.is_object()) continue;
        Sample sample{std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                      produced_ ? produced_() : 0, stats.value("consumed", uint64_t{0}),
                      stats.value("outputs", Json::object()).value("delivered", uint64_t{0}),
                      stats.value("dead_lettered", Json::object()).value("total", uint64_t{0})};
        std::lock_guard lock(mutex_);
        history_.push_back(sample);
        if (history_.size() > limits_.history_seconds) history_.pop_front();
    }
}

Json Dashboard::summary() {
    Json stats = pipeline_stats();
    Json out;
    out["pipeline"] = stats;
    out["plugins"] = plugins_;
    std::lock_guard lock(mutex_);
    Json history = Json::array();
    for (const Sample &s : history_)
        history.push_back({{"t", s.t}, {"produced", s.produced}, {"consumed", s.consumed},
                           {"delivered", s.delivered}, {"dead_lettered", s.dead_lettered}});
    out["history"] = std::move(history);
    const uint64_t produced = produced_ ? produced_() : 0;
    const uint64_t consumed = stats.value("consumed", uint64_t{0});
    out["backlog"] = produced_ ? Json(produced > consumed ? produced - consumed : 0) : Json(nullptr);
    out["prefetched"] = stats.value("prefetched", Json(nullptr));
    out["tapped"] = tapped_;
    out["sensors"] = latest_window_.size();
    out["sensors_not_kept"] = sensors_not_kept_;
    out["alerts_seen"] = alert_sequence_;
    return out;
}

Json Dashboard::windows(std::string_view query, size_t limit) {
    Json rows = Json::array();
    std::lock_guard lock(mutex_);
    for (const auto &[sensor, window] : latest_window_) {
        if (rows.size() >= limit) break;
        if (!query.empty() && sensor.find(query) == std::string::npos) continue;
        Json value = Json::parse(window, nullptr, false);
        if (value.is_discarded()) continue;
        rows.push_back(value.contains("data") ? value["data"] : value);  // envelope or bare result
    }
    return {{"windows", std::move(rows)}, {"sensors", latest_window_.size()}};
}

std::string Dashboard::alert_events(uint64_t &cursor) {
    std::string frames;
    std::lock_guard lock(mutex_);
    for (const auto &[sequence, alert] : alerts_) {
        if (sequence <= cursor) continue;
        // One SSE frame per alert; the JSON has no newline (the library writes it compact).
        frames += "id: " + std::to_string(sequence) + "\nevent: alert\ndata: " + alert + "\n\n";
        cursor = sequence;
    }
    return frames;
}

void Dashboard::add_routes(http::Router &router) {
    router.add("GET", "/", [](const http::Request &) {
        return http::Response{200, "text/html; charset=utf-8", kPage, {}, nullptr};
    });
    router.add("GET", "/api/summary", [this](const http::Request &) {
        return http::Response{200, "application/json", summary().dump(), {}, nullptr};
    });
    router.add("GET", "/api/windows", [this](const http::Request &request) {
        const std::string limit_text = query_value(request.query, "limit");
        size_t limit = 100;
        if (!limit_text.empty()) {
            char *end = nullptr;
            const unsigned long long parsed = std::strtoull(limit_text.c_str(), &end, 10);
            if (*end != '\0' || parsed == 0 || parsed > 10000)
                return http::error_response(400, "limit must be an integer from 1 to 10000");
            limit = static_cast<size_t>(parsed);
        }
        return http::Response{200, "application/json", windows(query_value(request.query, "q"), limit).dump(), {},
                              nullptr};
    });
    router.add("GET", "/api/alerts", [this](const http::Request &request) {
        // A reconnecting EventSource sends Last-Event-ID: resume after it; a new one gets the
        // recent alerts kept (max_alerts) first.
        auto stream = std::make_shared<http::EventStream>();
        const std::string_view last = request.header("Last-Event-ID");
        stream->start = last.empty() ? 0 : std::strtoull(std::string(last).c_str(), nullptr, 10);
        stream->next = [this](uint64_t &cursor) { return alert_events(cursor); };
        http::Response response;
        response.events = std::move(stream);
        return response;
    });
}

std::unique_ptr<http::Server> serve_dashboard(const std::string &listen, Dashboard &dashboard, const iots_api_t *api,
                                              iots_pipeline_t *pipeline) {
    const auto [host, port] = http::split_listen(listen, "--dashboard-listen");
    http::Router router;
    dashboard.add_routes(router);
    metrics::add_metrics_route(router, api, pipeline, nullptr);
    http::ServerLimits limits;
    limits.max_connections = 64;  // a few browsers; each alert stream holds one
    limits.threads = 1;
    auto server = std::make_unique<http::Server>(host, port, limits, std::move(router));
    server->start();
    return server;
}

}  // namespace iotstream_host::dashboard
