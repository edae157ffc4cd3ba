// influx_sink: a sink plugin (plugin.h "Sinks", ABI 1.3) writing the pipeline's window results,
// aggregates and alerts to InfluxDB 1.x (or anything speaking its line protocol, such as
// VictoriaMetrics) with HTTP POSTs to <url>/write?db=<db>&precision=ms.
//
// One point per record: the measurement is <measurement_prefix><output name>, the tags are the
// record's `tags` keys (sensor_id, and an alert's rule), the fields every number and boolean of
// the record's JSON value (nested objects flattened with '_': temperature_avg). The timestamp is
// the window start for a window result, so a window written twice (a replay after a restart)
// overwrites its point instead of adding one; else the record's event_time_ms (alerts); else its
// latest_timestamp (an aggregate: the newest event time among the readings it covers, so a
// replay emitting the same aggregate overwrites it too); else the event time the host passed;
// else none (the server's clock).
//
// Each batch is one POST. A connection error, a timeout, 429 or a 5xx is retried with
// exponential backoff (`retries` times); then, or at once for any other status (bad data), the
// batch is acknowledged as failed and the pipeline stops naming this sink.
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "iotstream/plugin.h"

namespace {

using Json = nlohmann::json;

// "YYYY-MM-DDTHH:MM:SS[.fff]Z" (as the stages write event times) in epoch ms, or IOTS_NO_VALUE.
int64_t parse_utc_ms(const std::string &text) {
    int year = 0, used = 0;
    unsigned month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (std::sscanf(text.c_str(), "%4d-%2u-%2uT%2u:%2u:%2u%n", &year, &month, &day, &hour, &minute, &second,
                    &used) != 6 ||
        hour > 23 || minute > 59 || second > 60)
        return IOTS_NO_VALUE;
    const char *rest = text.c_str() + used;
    int64_t millis = 0;
    if (*rest == '.') {
        int digits = 0;
        for (++rest; *rest >= '0' && *rest <= '9'; ++rest, ++digits)
            if (digits < 3) millis = millis * 10 + (*rest - '0');
        if (digits == 0) return IOTS_NO_VALUE;
        for (; digits < 3; ++digits) millis *= 10;
    }
    if (rest[0] != 'Z' || rest[1] != '\0') return IOTS_NO_VALUE;
    const std::chrono::year_month_day date{std::chrono::year{year}, std::chrono::month{month}, std::chrono::day{day}};
    if (!date.ok()) return IOTS_NO_VALUE;
    const int64_t days = std::chrono::sys_days(date).time_since_epoch().count();
    return ((days * 24 + hour) * 60 + minute) * 60000 + int64_t{second} * 1000 + millis;
}

const iots_config_key_t kKeys[] = {
    {"url", IOTS_CONFIG_STRING, "\"http://127.0.0.1:8086\"", "InfluxDB's HTTP base URL"},
    {"db", IOTS_CONFIG_STRING, nullptr, "the database written to (/write?db=...)"},
    {"measurement_prefix", IOTS_CONFIG_STRING, "\"iot_\"", "measurement = prefix + output name"},
    {"tags", IOTS_CONFIG_JSON, "[\"sensor_id\", \"rule\"]", "string keys of a record written as tags"},
    {"timeout_ms", IOTS_CONFIG_INT, "10000", "per POST"},
    {"retries", IOTS_CONFIG_INT, "5", "attempts after the first for a transient failure"},
    {"backoff_ms", IOTS_CONFIG_INT, "200", "first retry delay, doubled each time (at most 10 s)"},
};

// Line protocol escaping: measurement (commas, spaces), tag keys/values and field keys (commas,
// equals signs, spaces), string field values (quotes, backslashes).
void escape(std::string &out, std::string_view text, bool measurement) {
    for (char c : text) {
        if (c == ',' || c == ' ' || (!measurement && c == '=')) out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
}

struct Sink {
    const iots_host_api_t *host;
    iots_host_ctx_t *ctx;
    std::string url, prefix;
    std::vector<std::string> tags;
    int64_t timeout_ms = 10000, retries = 5, backoff_ms = 200;
    CURL *curl = nullptr;
    std::string body, response;

    void log(int level, const std::string &message) const { host->log(ctx, level, message.c_str()); }

    void fields(std::string &out, bool &first, const std::string &prefix_key, const Json &value) const {
        for (auto it = value.begin(); it != value.end(); ++it) {
            const std::string key = prefix_key.empty() ? it.key() : prefix_key + "_" + it.key();
            const Json &v = it.value();
            if (v.is_object()) {
                fields(out, first, key, v);
                continue;
            }
            if (!v.is_number() && !v.is_boolean()) continue;
            if (prefix_key.empty() && std::find(tags.begin(), tags.end(), key) != tags.end()) continue;
            if (v.is_number_float() && !std::isfinite(v.get<double>())) continue;
            out += first ? ' ' : ',';
            first = false;
            escape(out, key, false);
            out += '=';
            if (v.is_boolean()) {
                out += v.get<bool>() ? "true" : "false";
            } else {
                // Every number as a float: a field's type is fixed by its first write in InfluxDB,
                // and a count or average may come as either.
                char buf[32];
                std::snprintf(buf, sizeof buf, "%.17g", v.get<double>());
                out += buf;
            }
        }
    }

    // One record as a line; false (nothing appended) when it has no field.
    bool line(std::string &out, std::string_view output, std::string_view key, std::string_view value,
              int64_t event_time_ms) const {
        Json record = Json::parse(value.begin(), value.end(), nullptr, false);
        if (record.is_discarded() || !record.is_object()) return false;
        if (record.contains("data") && record["data"].is_object()) record = record["data"];  // the envelope
        std::string text;
        escape(text, prefix + std::string(output), true);
        bool has_sensor_tag = false;
        for (const std::string &tag : tags) {
            auto it = record.find(tag);
            if (it == record.end() || !it->is_string() || it->get_ref<const std::string &>().empty()) continue;
            has_sensor_tag |= tag == "sensor_id";
            text += ',';
            escape(text, tag, false);
            text += '=';
            escape(text, it->get_ref<const std::string &>(), false);
        }
        if (!has_sensor_tag && !key.empty() && std::find(tags.begin(), tags.end(), "sensor_id") != tags.end()) {
            text += ",sensor_id=";
            escape(text, key, false);
        }
        bool first = true;
        fields(text, first, "", record);
        if (first) return false;
        int64_t time_ms = IOTS_NO_VALUE;
        if (auto it = record.find("window_start"); it != record.end() && it->is_number_integer())
            time_ms = it->get<int64_t>() * 1000;  // seconds in the window result
        else if (auto et = record.find("event_time_ms"); et != record.end() && et->is_number_integer())
            time_ms = et->get<int64_t>();
        else if (auto lt = record.find("latest_timestamp"); lt != record.end() && lt->is_string())
            time_ms = parse_utc_ms(lt->get_ref<const std::string &>());
        if (time_ms == IOTS_NO_VALUE) time_ms = event_time_ms;
        if (time_ms != IOTS_NO_VALUE) text += ' ' + std::to_string(time_ms);
        out += text;
        out += '\n';
        return true;
    }

    static size_t collect(char *data, size_t size, size_t count, void *user) {
        static_cast<std::string *>(user)->append(data, size * count);
        return size * count;
    }

    // 0 written; 1 transient (retry); 2 permanent. `why` says what happened.
    int post(std::string &why) {
        response.clear();
        const std::string target = url;
        curl_easy_reset(curl);
        curl_easy_setopt(curl, CURLOPT_URL, target.c_str());
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
        const CURLcode rc = curl_easy_perform(curl);
        if (rc != CURLE_OK) {
            why = std::string("POST ") + target + ": " + curl_easy_strerror(rc);
            return 1;
        }
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300) return 0;
        why = "POST " + target + ": HTTP " + std::to_string(status) + " " + response.substr(0, 300);
        return status == 429 || status >= 500 ? 1 : 2;
    }

    int write(const iots_sink_batch_t *batch) {
        body.clear();
        uint32_t skipped = 0;
        for (uint32_t i = 0; i < batch->count; ++i) {
            const iots_str_t &o = batch->outputs[i], &k = batch->keys[i], &v = batch->values[i];
            if (!line(body, {o.data, o.len}, {k.data, k.len}, {v.data, v.len}, batch->event_time_ms[i])) ++skipped;
        }
        if (skipped) log(3, std::to_string(skipped) + " record(s) without a JSON object of numbers skipped");
        if (body.empty()) return host->sink_ack(ctx, batch->token, IOTS_SINK_OK, nullptr), 0;
        std::string why;
        int64_t delay = backoff_ms;
        for (int64_t attempt = 0;; ++attempt) {
            const int result = post(why);
            if (result == 0) return host->sink_ack(ctx, batch->token, IOTS_SINK_OK, nullptr), 0;
            if (result == 2 || attempt >= retries) break;
            log(3, why + "; retrying in " + std::to_string(delay) + " ms");
            std::this_thread::sleep_for(std::chrono::milliseconds(delay));
            delay = std::min<int64_t>(delay * 2, 10000);
        }
        host->sink_ack(ctx, batch->token, IOTS_SINK_FAILED, why.c_str());
        return 0;
    }
};

int sink_create(const iots_host_api_t *host, iots_host_ctx_t *ctx, const iots_config_t *cfg, void **instance,
                char *errstr, size_t errstr_size) {
    try {
        if (!IOTS_HAS_FIELD(host, sink_ack)) {
            std::snprintf(errstr, errstr_size, "this host has no sink_ack (plugin ABI 1.3 needed)");
            return 1;
        }
        auto sink = std::make_unique<Sink>();
        sink->host = host;
        sink->ctx = ctx;
        const char *text = nullptr;
        host->config_string(cfg, "url", &text, nullptr);
        std::string base = text ? text : "";
        while (!base.empty() && base.back() == '/') base.pop_back();
        host->config_string(cfg, "db", &text, nullptr);
        const std::string db = text ? text : "";
        if (db.empty()) {
            std::snprintf(errstr, errstr_size, "config key 'db' must name a database");
            return 1;
        }
        host->config_string(cfg, "measurement_prefix", &text, nullptr);
        sink->prefix = text ? text : "";
        size_t len = 0;
        host->config_json(cfg, "tags", &text, &len);
        Json tags = Json::parse(text, text + len, nullptr, false);
        if (!tags.is_array()) {
            std::snprintf(errstr, errstr_size, "config key 'tags' must be an array of key names");
            return 1;
        }
        for (const Json &t : tags) {
            if (!t.is_string()) {
                std::snprintf(errstr, errstr_size, "config key 'tags' must be an array of key names");
                return 1;
            }
            sink->tags.push_back(t.get<std::string>());
        }
        host->config_int(cfg, "timeout_ms", &sink->timeout_ms);
        host->config_int(cfg, "retries", &sink->retries);
        host->config_int(cfg, "backoff_ms", &sink->backoff_ms);
        if (sink->timeout_ms < 1 || sink->retries < 0 || sink->backoff_ms < 0) {
            std::snprintf(errstr, errstr_size, "config keys 'timeout_ms' (>= 1), 'retries' and 'backoff_ms' (>= 0)");
            return 1;
        }
        sink->curl = curl_easy_init();
        if (!sink->curl) {
            std::snprintf(errstr, errstr_size, "curl_easy_init failed");
            return 1;
        }
        char *escaped = curl_easy_escape(sink->curl, db.c_str(), static_cast<int>(db.size()));
        sink->url = base + "/write?db=" + escaped + "&precision=ms";
        curl_free(escaped);
        *instance = sink.release();
        return 0;
    } catch (const std::exception &e) {
        std::snprintf(errstr, errstr_size, "%s", e.what());
        return 1;
    }
}

int sink_write(void *instance, const iots_sink_batch_t *batch, char *errstr, size_t errstr_size) {
    try {
        return static_cast<Sink *>(instance)->write(batch);
    } catch (const std::exception &e) {
        std::snprintf(errstr, errstr_size, "%s", e.what());
        return 1;
    }
}

void sink_destroy(void *instance) {
    auto *sink = static_cast<Sink *>(instance);
    if (sink->curl) curl_easy_cleanup(sink->curl);
    delete sink;
}

constexpr iots_plugin_descriptor_t kDescriptor = {
    IOTS_DESCRIPTOR_HEADER(iots_plugin_descriptor_t),
    .name = "influx_sink",
    .version = "1.0.0",
    .description = "Writes windows, aggregates and alerts to InfluxDB 1.x (line protocol over HTTP)",
    .kind = IOTS_PLUGIN_SINK,
    .config_keys = kKeys,
    .config_key_count = sizeof kKeys / sizeof kKeys[0],
    .create = sink_create,
    .process = nullptr,
    .tick = nullptr,
    .on_assign = nullptr,
    .on_revoke = nullptr,
    .checkpoint = nullptr,
    .flush = nullptr,
    .destroy = sink_destroy,
    .config_key_size = sizeof(iots_config_key_t),
    .state_version = 0,
    .state_min_version = 0,
    .export_state = nullptr,
    .import_state = nullptr,
    .write_sink = sink_write,
    .gauges = nullptr,
};

}  // namespace

IOTS_PLUGIN_DEFINE(&kDescriptor);
