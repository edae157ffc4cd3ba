// The host functions of plugin.h: C-callable trampolines, and the pipeline's side of each
// (emit, dead letters, rules, anomalies and their alert records, field lookup).
#include "pipeline/host_table.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "common/clock.hpp"
#include "common/json_escape.hpp"
#include "decode/timestamp.hpp"
#include "pipeline/pipeline.hpp"
#include "pipeline/plugin_sink.hpp"
#include "plugin_host/plugin_config.hpp"

namespace iotstream {

namespace {

// Host functions: C-callable trampolines into the pipeline; nothing may throw across them.
void host_log(iots_host_ctx_t *ctx, int level, const char *message) {
    if (!ctx || !message) return;
    level = std::clamp(level, 0, 5);
    ctx->log->log(static_cast<spdlog::level::level_enum>(level), "{}", message);
}

template <typename Body>
int host_call(iots_host_ctx_t *ctx, const char *what, Body &&body) noexcept {
    if (!ctx) return 1;
    try {
        return body();
    } catch (const std::exception &e) {
        ctx->log->error("{} failed: {}", what, e.what());
    } catch (...) {
        ctx->log->error("{} failed", what);
    }
    return 1;
}

int host_emit(iots_host_ctx_t *ctx, const char *output, const char *key, size_t key_len,
              const char *value, size_t value_len, int flags) {
    return host_call(ctx, "emit", [&] {
        if (!output || (!value && value_len)) return 1;
        return ctx->pipeline->host_emit(ctx, output, std::string_view(key ? key : "", key ? key_len : 0),
                                        std::string_view(value ? value : "", value_len), flags);
    });
}

int host_dead_letter(iots_host_ctx_t *ctx, const iots_batch_view_t *batch, uint32_t index,
                     const char *reason, const char *detail) {
    return host_call(ctx, "dead_letter",
                     [&] { return ctx->pipeline->host_dead_letter(ctx, batch, index, reason, detail); });
}

void *host_alloc(iots_host_ctx_t *, size_t size) { return std::malloc(size ? size : 1); }
void host_free(iots_host_ctx_t *, void *ptr) { std::free(ptr); }

int host_register_rule(iots_host_ctx_t *ctx, const char *name) {
    if (!ctx || !name || !*name) return -1;
    try {
        return ctx->pipeline->host_register_rule(name);
    } catch (...) {
        return -1;
    }
}

const char *host_rule_name(iots_host_ctx_t *ctx, int id) {
    return ctx ? ctx->pipeline->host_rule_name(id) : nullptr;
}

int host_report_anomaly(iots_host_ctx_t *ctx, const iots_batch_view_t *batch, uint32_t index, int rule_id,
                        double value) {
    return host_call(ctx, "report_anomaly", [&] {
        return ctx->pipeline->host_report_anomaly(ctx, batch, index, rule_id, value);
    });
}

int host_field_index(iots_host_ctx_t *ctx, const char *name) {
    return ctx && name ? ctx->pipeline->host_field_index(name) : -1;
}

int host_sink_ack(iots_host_ctx_t *ctx, uint64_t token, int status, const char *detail) {
    return host_call(ctx, "sink_ack", [&] {
        if (!ctx->sink) {
            ctx->log->error("sink_ack called by a plugin that is not a sink");
            return 1;
        }
        return ctx->sink->ack(token, status, detail);
    });
}

void append_double(std::string &out, double value) {
    if (!std::isfinite(value)) {
        out += "null";
        return;
    }
    char buf[32];
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, ptr);
}

}  // namespace

iots_host_api_t make_host_api() {
    iots_host_api_t api{};
    api.struct_size = sizeof(iots_host_api_t);
    api.abi_major = IOTS_PLUGIN_ABI_MAJOR;
    api.abi_minor = IOTS_PLUGIN_ABI_MINOR;
    api.log = host_log;
    api.emit = host_emit;
    api.dead_letter = host_dead_letter;
    api.alloc_mem = host_alloc;
    api.free_mem = host_free;
    fill_config_functions(api);
    api.register_rule = host_register_rule;
    api.rule_name = host_rule_name;
    api.report_anomaly = host_report_anomaly;
    api.field_index = host_field_index;
    api.sink_ack = host_sink_ack;
    return api;
}

int Pipeline::host_emit(iots_host_ctx_s *ctx, const char *output, std::string_view key, std::string_view value,
                        int flags) {
    auto it = config_.outputs.find(std::string_view(output));
    if (it == config_.outputs.end()) {
        ctx->log->error("emit to unknown output '{}' (the pipeline's outputs name its topics)", output);
        return 1;
    }
    if (flags & IOTS_EMIT_ENVELOPE) value = envelope_.build(key, value);
    emit_output(it->first, key, value, IOTS_NO_VALUE);
    if (ctx->metrics) ctx->metrics->records_out.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(stats_mutex_);
    ++emitted_by_output_[it->first];
    return 0;
}

std::string Pipeline::batch_misuse(const iots_batch_view_t *batch, uint32_t index) const {
    if (batch_in_process_ == nullptr)
        return "called outside process(), e.g. from tick() or flush(); a batch is valid only during the "
               "process() call that received it";
    if (batch != batch_in_process_) return "the batch is not the one being processed";
    if (index >= batch_in_process_->count)
        return "record index " + std::to_string(index) + " is past the batch's " +
               std::to_string(batch_in_process_->count) + " records";
    return {};
}

int Pipeline::host_dead_letter(iots_host_ctx_s *ctx, const iots_batch_view_t *batch, uint32_t index,
                               const char *reason, const char *detail) {
    std::string problem = batch_misuse(batch, index);
    if (problem.empty() && (!reason || !*reason)) problem = "no reason given";
    if (!problem.empty()) {
        ctx->log->error("dead_letter refused: {}", problem);
        return 1;
    }
    if (replayed_for(ctx->plugin, batch->streams[index], batch->offsets[index])) {
        counters_.replay_outputs_skipped.fetch_add(1, std::memory_order_relaxed);  // sent by the previous owner
        return 0;
    }
    const uint32_t row = subset_in_process_ ? subset_in_process_->original_row(index) : index;
    const rd_kafka_message_t &message = *batch_messages_[batch_.input_indices()[row]];
    dead_letter_message(message, reason, detail ? detail : "");
    counters_.stage_dead_lettered.fetch_add(1, std::memory_order_relaxed);
    return 0;
}

int Pipeline::host_register_rule(const char *name) {
    std::lock_guard lock(rules_mutex_);
    for (size_t id = 0; id < rule_names_.size(); ++id)
        if (rule_names_[id] == name) return static_cast<int>(id);
    if (rule_names_.size() >= kMaxRules) return -1;
    rule_names_.emplace_back(name);
    return static_cast<int>(rule_names_.size() - 1);
}

const char *Pipeline::host_rule_name(int id) const {
    std::lock_guard lock(rules_mutex_);
    // Names are never removed and the vector never reallocates past kMaxRules (reserved).
    return id >= 0 && static_cast<size_t>(id) < rule_names_.size() ? rule_names_[static_cast<size_t>(id)].c_str()
                                                                   : nullptr;
}

int Pipeline::host_report_anomaly(iots_host_ctx_s *ctx, const iots_batch_view_t *batch, uint32_t index,
                                  int rule_id, double value) {
    const char *rule = host_rule_name(rule_id);
    std::string problem = batch_misuse(batch, index);
    if (problem.empty() && !rule) problem = "unknown rule id " + std::to_string(rule_id);
    if (!problem.empty()) {
        ctx->log->error("report_anomaly refused: {}", problem);
        return 1;
    }
    const uint32_t row = subset_in_process_ ? subset_in_process_->original_row(index) : index;
    batch_.anomaly_bits()[row] |= uint64_t{1} << rule_id;
    // A replayed record: the rule's bit counts for later stages, its alert was sent already.
    if (replayed_for(ctx->plugin, batch->streams[index], batch->offsets[index])) {
        counters_.replay_outputs_skipped.fetch_add(1, std::memory_order_relaxed);
        return 0;
    }
    const iots_str_t &sensor = batch->sensor_ids[index];
    const int64_t event_ms = batch->event_time_ms[index];
    scratch_.clear();
    scratch_ += "{\"sensor_id\":\"";
    append_json_escaped(scratch_, std::string_view(sensor.data, sensor.len));
    scratch_ += "\",\"rule\":\"";
    append_json_escaped(scratch_, rule);
    scratch_ += "\",\"value\":";
    append_double(scratch_, value);
    scratch_ += ",\"event_time\":\"";
    scratch_ += format_iso8601_utc(event_ms);
    scratch_ += "\",\"event_time_ms\":";
    scratch_ += std::to_string(event_ms);
    scratch_ += ",\"detected_at_ms\":";
    scratch_ += std::to_string(wall_clock_ms());
    scratch_ += ",\"plugin\":\"";
    append_json_escaped(scratch_, ctx->plugin);
    scratch_ += "\"}";
    emit_output("alerts", std::string_view(sensor.data, sensor.len), scratch_, event_ms);
    counters_.alerts.fetch_add(1, std::memory_order_relaxed);
    if (ctx->metrics) ctx->metrics->records_out.fetch_add(1, std::memory_order_relaxed);
    return 0;
}

int Pipeline::host_field_index(const char *name) const { return schema_->field_index(name); }


}  // namespace iotstream
