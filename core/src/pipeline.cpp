#include "pipeline.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "defaults.hpp"
#include "log.hpp"
#include "plugin_config.hpp"
#include "timestamp.hpp"

// What a plugin instance's host context knows: its pipeline and its name, for logs.
struct iots_host_ctx_s {
    iotstream::Pipeline *pipeline;
    std::string plugin;
    std::shared_ptr<spdlog::logger> log;
};

namespace iotstream {

namespace {

constexpr int kTickIntervalMs = 100;
constexpr int kPluginPollIntervalMs = 250;
constexpr int kRevokeFlushTimeoutMs = 30000;
constexpr const char *kWatermarkMetadataPrefix = "iotstream:wm=";
constexpr size_t kMaxRules = 64;

int64_t wall_clock_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

int64_t parse_watermark_metadata(const std::string &metadata) {
    if (metadata.rfind(kWatermarkMetadataPrefix, 0) != 0) return IOTS_NO_VALUE;
    int64_t value = 0;
    const char *begin = metadata.data() + std::strlen(kWatermarkMetadataPrefix);
    const char *end = metadata.data() + metadata.size();
    auto [ptr, ec] = std::from_chars(begin, end, value);
    return ec == std::errc() && ptr == end ? value : IOTS_NO_VALUE;
}

// Merges a "kafka" section over the pipeline's shared one into a client config object.
Json client_config(const Json &overrides, const KafkaProperties &shared, const std::string &what) {
    Json out = overrides.is_null() ? Json::object() : overrides;
    if (!out.is_object()) throw Error(IOTS_ERR_CONFIG, "pipeline config: key '" + what + "' must be an object");
    Json kafka = Json::object();
    for (auto &[name, value] : shared) kafka[name] = value;
    if (out.contains("kafka")) {
        if (!out["kafka"].is_object())
            throw Error(IOTS_ERR_CONFIG, "pipeline config: key '" + what + ".kafka' must be an object");
        for (auto &[name, value] : out["kafka"].items()) kafka[name] = value;
    }
    out["kafka"] = kafka;
    return out;
}

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

// An epoch: outputs produced between two seals. `outstanding` starts at 1 (the epoch is open)
// and counts every output not yet acknowledged; at 0 the epoch's commit points are durable.
struct Pipeline::Epoch {
    std::atomic<int64_t> outstanding{1};
    std::atomic<bool> delivery_failed{false};
    std::vector<Consumer::CommitPoint> points;
};

PipelineConfig PipelineConfig::from_json(const Json &document) {
    PipelineConfig c;
    ConfigReader r(document, "pipeline config");
    c.kafka = r.kafka_properties();

    Json input = r.get_json("input", Json::object());
    ConfigReader in(input, "pipeline config: input");
    Json topics = in.get_json("topics", Json::array({kTopicReadings}));
    if (!topics.is_array() || topics.empty())
        throw Error(IOTS_ERR_CONFIG, "pipeline config: input: key 'topics' must be a non-empty array of names");
    for (const Json &t : topics) {
        if (!t.is_string() || t.get<std::string>().empty())
            throw Error(IOTS_ERR_CONFIG, "pipeline config: input: every topic must be a non-empty string, got " + t.dump());
        c.input_topics.push_back(t.get<std::string>());
    }
    c.group_id = in.get_string("group_id", "iotstream-pipeline");
    c.auto_offset_reset = in.get_string("auto_offset_reset", "earliest");
    c.max_batch = static_cast<size_t>(in.get_int("max_batch", 10000, 1, 1000000));
    c.poll_timeout_ms = static_cast<int>(in.get_int("poll_timeout_ms", 100, 1, 10000));
    c.bounded_start = in.get_string("start", "earliest");
    if (c.bounded_start != "earliest" && c.bounded_start != "committed")
        throw Error(IOTS_ERR_CONFIG, "pipeline config: input: key 'start' must be \"earliest\" or \"committed\", got \"" +
                                         c.bounded_start + "\"");
    c.bounded_start_time_ms = in.get_int("start_time_ms", -1, -1, INT64_MAX);
    c.bounded_start_offset = in.get_int("start_offset", -1, -1, INT64_MAX);
    if (c.bounded_start_time_ms >= 0 && c.bounded_start_offset >= 0)
        throw Error(IOTS_ERR_CONFIG, "pipeline config: input: give 'start_offset' or 'start_time_ms', not both");
    in.finish();

    c.decoder = r.get_json("decoder", Json::object());

    Json stages = r.get_json("stages", Json::array({{{"plugin", "anomaly"}}, {{"plugin", "aggregate"}}, {{"plugin", "window"}}}));
    if (!stages.is_array()) throw Error(IOTS_ERR_CONFIG, "pipeline config: key 'stages' must be an array");
    for (const Json &stage : stages) {
        if (!stage.is_object())
            throw Error(IOTS_ERR_CONFIG, "pipeline config: each stage must be an object {\"plugin\": name, \"config\": {...}}, got " + stage.dump());
        ConfigReader s(stage, "pipeline config: stage");
        StageSpec spec{s.get_string("plugin", ""), s.get_json("config", Json::object())};
        s.finish();
        if (spec.plugin.empty()) throw Error(IOTS_ERR_CONFIG, "pipeline config: a stage has no 'plugin' name");
        for (const StageSpec &other : c.stages)
            if (other.plugin == spec.plugin)
                throw Error(IOTS_ERR_CONFIG, "pipeline config: stage '" + spec.plugin + "' is listed twice");
        c.stages.push_back(std::move(spec));
    }

    Json rules = r.get_json("rules", Json::object());
    if (!rules.is_object()) throw Error(IOTS_ERR_CONFIG, "pipeline config: key 'rules' must be an object {plugin: config}");
    for (auto &[name, value] : rules.items()) c.rule_configs[name] = value;

    c.outputs = {{"windows", kTopicWindows}, {"aggregates", kTopicAggregates},
                 {"alerts", kTopicAlerts}, {"dlq", kTopicDeadLetter}};
    Json outputs = r.get_json("outputs", Json::object());
    if (!outputs.is_object()) throw Error(IOTS_ERR_CONFIG, "pipeline config: key 'outputs' must be an object {output: topic}");
    for (auto &[name, value] : outputs.items()) {
        if (!value.is_string() || value.get<std::string>().empty())
            throw Error(IOTS_ERR_CONFIG, "pipeline config: outputs: '" + name + "' must name a topic");
        c.outputs[name] = value.get<std::string>();
    }

    Json plugins = r.get_json("plugins", Json::object());
    ConfigReader p(plugins, "pipeline config: plugins");
    std::string dir = p.get_string("dir", "");
    c.plugin_dir = dir.empty() ? default_plugin_dir() : std::filesystem::path(dir);
    c.watch_plugins = p.get_bool("watch", true);
    p.finish();

    c.commit_interval_ms = static_cast<int>(r.get_int("commit_interval_ms", 1000, 10, 600000));
    c.producer = r.get_json("producer", Json::object());
    c.consumer = r.get_json("consumer", Json::object());
    r.finish();
    return c;
}

Pipeline::Pipeline(const Json &document) : config_(PipelineConfig::from_json(document)) {
    schema_ = std::make_shared<const DecoderSchema>(DecoderSchema::from_json(config_.decoder, "pipeline config: decoder"));
    decoder_ = std::make_unique<Decoder>(schema_);
    open_epoch_ = std::make_unique<Epoch>();
    rule_names_.reserve(kMaxRules);  // rule_name() hands out pointers into these strings

    host_api_.struct_size = sizeof(iots_host_api_t);
    host_api_.abi_major = IOTS_PLUGIN_ABI_MAJOR;
    host_api_.abi_minor = IOTS_PLUGIN_ABI_MINOR;
    host_api_.log = host_log;
    host_api_.emit = iotstream::host_emit;
    host_api_.dead_letter = iotstream::host_dead_letter;
    host_api_.alloc_mem = host_alloc;
    host_api_.free_mem = host_free;
    fill_config_functions(host_api_);
    host_api_.register_rule = iotstream::host_register_rule;
    host_api_.rule_name = iotstream::host_rule_name;
    host_api_.report_anomaly = iotstream::host_report_anomaly;
    host_api_.field_index = iotstream::host_field_index;

    build_clients();

    plugins_ = std::make_unique<PluginDirectory>(config_.plugin_dir);
    live_ = std::make_unique<LiveInstances>([this](const PluginRef &plugin) { return make_instance(plugin); });
    live_->add(plugins_->plugins());
    // A configured stage that is not live is an error now, with the reason it is not.
    for (const StageSpec &spec : config_.stages) {
        if (live_->find(spec.plugin)) continue;
        if (PluginRef plugin = plugins_->find(spec.plugin)) (void)make_instance(plugin);  // throws its reason
        std::string why = "stage '" + spec.plugin + "' has no plugin in " + config_.plugin_dir.string();
        for (const PluginRejection &rejection : plugins_->rejections()) why += "; rejected: " + rejection.reason;
        throw Error(IOTS_ERR_PLUGIN, why);
    }
    refresh_execution_order();
}

Pipeline::~Pipeline() {
    try {
        if (running_) stop(false, 10000);
    } catch (...) {
    }
    live_.reset();  // instances go before the contexts and clients they use
    consumer_.reset();
    producer_.reset();
}

void Pipeline::build_clients() {
    Json producer_config = client_config(config_.producer, config_.kafka, "producer");
    // Outputs are idempotent (no duplicates from retries) and block rather than fail when the
    // local queue is full: backpressure reaches the consumer instead of losing results.
    Json &pk = producer_config["kafka"];
    if (!pk.contains("enable.idempotence")) pk["enable.idempotence"] = true;
    if (!pk.contains("linger.ms")) pk["linger.ms"] = 2;  // alerts are latency-sensitive
    if (!pk.contains("compression.type")) pk["compression.type"] = "lz4";
    if (!producer_config.contains("queue_full_timeout_ms")) producer_config["queue_full_timeout_ms"] = 120000;
    producer_ = std::make_unique<Producer>(producer_config,
                                           [this](const iots_delivery_report_t &report) { on_delivery(report); });

    Json consumer_config = client_config(config_.consumer, config_.kafka, "consumer");
    consumer_config["group_id"] = config_.group_id;
    consumer_config["auto_offset_reset"] = config_.auto_offset_reset;
    Consumer::Hooks hooks;
    hooks.on_assign = [this](const TopicPartitions &parts) { on_assign(parts); };
    hooks.on_revoke = [this](const TopicPartitions &parts) { on_revoke(parts); };
    consumer_ = std::make_unique<Consumer>(consumer_config, std::move(hooks));
}

std::unique_ptr<PluginInstance> Pipeline::make_instance(const PluginRef &plugin) {
    const std::string name(plugin->name());
    const StageSpec *spec = nullptr;
    for (const StageSpec &s : config_.stages)
        if (s.plugin == name) spec = &s;
    Json config = Json::object();
    if (spec) {
        config = spec->config;
    } else if (plugin->is_rule()) {  // every rule plugin in the folder joins the rules stage
        if (auto it = config_.rule_configs.find(name); it != config_.rule_configs.end()) config = it->second;
    } else {
        logger("pipeline")->info("plugin {} is loaded but not a stage of this pipeline", plugin->label());
        return nullptr;
    }
    auto ctx = std::make_unique<iots_host_ctx_s>(iots_host_ctx_s{this, name, logger("plugin." + name)});
    auto instance = std::make_unique<PluginInstance>(plugin, config, &host_api_, ctx.get());
    for (uint32_t id = 0; id < streams_.size(); ++id)
        if (streams_[id].assigned) instance->on_assign(id, streams_[id].watermark_ms);
    contexts_.push_back(std::move(ctx));
    order_dirty_ = true;
    return instance;
}

void Pipeline::refresh_execution_order() {
    execution_order_.clear();
    std::vector<PluginInstance *> rules;
    for (const auto &instance : live_->instances())
        if (instance->plugin().is_rule()) rules.push_back(instance.get());
    bool rules_placed = false;
    for (const StageSpec &spec : config_.stages) {
        PluginInstance *instance = live_->find(spec.plugin);
        if (!instance) continue;
        if (instance->plugin().is_rule()) {
            if (!rules_placed) execution_order_.insert(execution_order_.end(), rules.begin(), rules.end());
            rules_placed = true;
        } else {
            execution_order_.push_back(instance);
        }
    }
    // Without a rule stage in the list, rules run first so every stage sees their anomalies.
    if (!rules_placed) execution_order_.insert(execution_order_.begin(), rules.begin(), rules.end());
    order_dirty_ = false;
}

uint32_t Pipeline::stream_id(const std::string &topic, int32_t partition) {
    auto key = std::make_pair(topic, partition);
    if (auto it = stream_ids_.find(key); it != stream_ids_.end()) return it->second;
    auto id = static_cast<uint32_t>(streams_.size());
    streams_.push_back(Stream{topic, partition});
    stream_ids_.emplace(std::move(key), id);
    return id;
}

// ---- host functions -------------------------------------------------------------------------

int Pipeline::host_emit(iots_host_ctx_s *ctx, const char *output, std::string_view key, std::string_view value,
                        int flags) {
    auto it = config_.outputs.find(std::string_view(output));
    if (it == config_.outputs.end()) {
        ctx->log->error("emit to unknown output '{}' (the pipeline's outputs name its topics)", output);
        return 1;
    }
    if (flags & IOTS_EMIT_ENVELOPE) value = envelope_.build(key, value);
    send_output(it->second, key, value, {});
    std::lock_guard lock(stats_mutex_);
    ++emitted_by_output_[it->first];
    return 0;
}

int Pipeline::host_dead_letter(iots_host_ctx_s *ctx, const iots_batch_view_t *batch, uint32_t index,
                               const char *reason, const char *detail) {
    if (batch != &batch_.view() || index >= batch_.size() || !reason || !*reason) {
        ctx->log->error("dead_letter outside the batch being processed (index {})", index);
        return 1;
    }
    const rd_kafka_message_t &message = *batch_messages_[batch_.input_indices()[index]];
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
    if (batch != &batch_.view() || index >= batch_.size() || !rule) {
        ctx->log->error("report_anomaly with an unknown rule ({}) or outside the current batch", rule_id);
        return 1;
    }
    batch_.anomaly_bits()[index] |= uint64_t{1} << rule_id;
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
    send_output(config_.outputs.at("alerts"), std::string_view(sensor.data, sensor.len), scratch_, {});
    counters_.alerts.fetch_add(1, std::memory_order_relaxed);
    return 0;
}

int Pipeline::host_field_index(const char *name) const { return schema_->field_index(name); }

// ---- outputs and epochs ---------------------------------------------------------------------

void Pipeline::send_output(std::string_view topic, std::string_view key, std::string_view value,
                           std::span<const KafkaHeader> headers) {
    Epoch *epoch = open_epoch_.get();
    epoch->outstanding.fetch_add(1, std::memory_order_relaxed);
    try {
        producer_->send(topic, key, value, headers, epoch);
    } catch (...) {
        epoch->outstanding.fetch_sub(1, std::memory_order_relaxed);
        throw;  // a result that cannot be sent stops the pipeline before anything is committed
    }
    counters_.outputs_sent.fetch_add(1, std::memory_order_relaxed);
}

void Pipeline::on_delivery(const iots_delivery_report_t &report) {
    auto *epoch = static_cast<Epoch *>(report.msg_opaque);
    if (report.err != IOTS_OK) {
        counters_.outputs_failed.fetch_add(1, std::memory_order_relaxed);
        if (epoch) epoch->delivery_failed.store(true);
        logger("pipeline")->error("output to {} failed: {}", report.topic ? report.topic : "?",
                                  report.errstr ? report.errstr : "");
    } else {
        counters_.outputs_delivered.fetch_add(1, std::memory_order_relaxed);
    }
    if (epoch) epoch->outstanding.fetch_sub(1, std::memory_order_acq_rel);
}

void Pipeline::dead_letter_message(const rd_kafka_message_t &message, std::string_view reason,
                                   std::string_view detail) {
    std::string source = std::string(rd_kafka_topic_name(message.rkt)) + ":" + std::to_string(message.partition) +
                         ":" + std::to_string(message.offset);
    const KafkaHeader headers[] = {{"iotstream.reason", reason},
                                   {"iotstream.detail", detail},
                                   {"iotstream.source", source}};
    send_output(config_.outputs.at("dlq"),
                std::string_view(static_cast<const char *>(message.key), message.key ? message.key_len : 0),
                std::string_view(static_cast<const char *>(message.payload), message.payload ? message.len : 0),
                headers);
    std::lock_guard lock(stats_mutex_);
    ++dead_letter_reasons_[std::string(reason)];
}

std::vector<Consumer::CommitPoint> Pipeline::commit_points(const std::vector<uint32_t> &ids) {
    std::vector<Consumer::CommitPoint> points;
    for (uint32_t id : ids) {
        Stream &stream = streams_[id];
        if (!stream.assigned || stream.next_offset < 0) continue;
        int64_t offset = stream.next_offset;
        int64_t watermark = IOTS_NO_VALUE;
        for (PluginInstance *instance : execution_order_) {
            PluginInstance::Checkpoint cp = instance->checkpoint(id);
            if (cp.oldest_needed_offset != IOTS_NO_VALUE) offset = std::min(offset, cp.oldest_needed_offset);
            if (cp.watermark_ms != IOTS_NO_VALUE)
                watermark = watermark == IOTS_NO_VALUE ? cp.watermark_ms : std::min(watermark, cp.watermark_ms);
        }
        if (watermark != IOTS_NO_VALUE) stream.watermark_ms = watermark;
        std::string metadata = stream.watermark_ms == IOTS_NO_VALUE
                                   ? std::string()
                                   : kWatermarkMetadataPrefix + std::to_string(stream.watermark_ms);
        points.push_back({stream.topic, stream.partition, offset, std::move(metadata)});
    }
    return points;
}

void Pipeline::seal_epoch() {
    std::vector<uint32_t> ids;
    for (uint32_t id = 0; id < streams_.size(); ++id)
        if (streams_[id].assigned) ids.push_back(id);
    open_epoch_->points = commit_points(ids);
    Epoch *sealed = open_epoch_.get();
    sealed_epochs_.push_back(std::move(open_epoch_));
    open_epoch_ = std::make_unique<Epoch>();
    sealed->outstanding.fetch_sub(1, std::memory_order_acq_rel);  // closes it
    last_seal_ = std::chrono::steady_clock::now();
}

void Pipeline::commit_durable_epochs() {
    while (!sealed_epochs_.empty() && sealed_epochs_.front()->outstanding.load(std::memory_order_acquire) == 0) {
        std::unique_ptr<Epoch> epoch = std::move(sealed_epochs_.front());
        sealed_epochs_.pop_front();
        if (epoch->delivery_failed)
            throw Error(IOTS_ERR_KAFKA, "an output record could not be delivered; nothing after the last commit is "
                                        "committed (the records will be processed again on restart)");
        if (!epoch->points.empty()) {
            // A commit refused during a rebalance (stale generation, unknown member) is not an
            // error of ours: the records stay uncommitted and are read again by their next
            // owner, which at-least-once allows. The next epoch's commit supersedes this one.
            try {
                // Between batches the commit is not waited for (a round trip would stall the
                // processing thread); on revoke and at the end it is (drain_and_commit).
                consumer_->commit(epoch->points, /*wait=*/draining_);
                counters_.commits.fetch_add(1, std::memory_order_relaxed);
            } catch (const Error &e) {
                counters_.commit_failures.fetch_add(1, std::memory_order_relaxed);
                logger("pipeline")->warn("commit skipped: {}", e.what());
            }
        }
        counters_.committed_epochs.fetch_add(1, std::memory_order_relaxed);
    }
}

void Pipeline::drain_and_commit(int timeout_ms, const std::vector<uint32_t> &) {
    seal_epoch();
    if (!producer_->flush(timeout_ms))
        logger("pipeline")->warn("outputs not all acknowledged within {} ms; their offsets stay uncommitted",
                                 timeout_ms);
    draining_ = true;  // these commits must land before the partitions are given up
    try {
        commit_durable_epochs();
    } catch (...) {
        draining_ = false;
        throw;
    }
    draining_ = false;
}

// ---- rebalances -----------------------------------------------------------------------------

void Pipeline::on_assign(const TopicPartitions &parts) {
    std::vector<Consumer::CommitPoint> committed = consumer_->committed(parts, 10000);
    for (const auto &[topic, partition] : parts) {
        uint32_t id = stream_id(topic, partition);
        Stream &stream = streams_[id];
        stream.assigned = true;
        stream.next_offset = -1;
        stream.watermark_ms = IOTS_NO_VALUE;
        for (const auto &point : committed)
            if (point.topic == topic && point.partition == partition)
                stream.watermark_ms = parse_watermark_metadata(point.metadata);
        for (const auto &instance : live_->instances()) instance->on_assign(id, stream.watermark_ms);
    }
    logger("pipeline")->info("assigned {} partition(s)", parts.size());
}

void Pipeline::on_revoke(const TopicPartitions &parts) {
    std::vector<uint32_t> ids;
    for (const auto &[topic, partition] : parts) ids.push_back(stream_id(topic, partition));
    // Make every result so far durable and commit, while these partitions are still ours
    // (finish() has already done so when the revoke comes from leaving the group).
    if (!failed_ && !finished_) {
        try {
            drain_and_commit(kRevokeFlushTimeoutMs, ids);
        } catch (const std::exception &e) {
            logger("pipeline")->warn("commit on revoke failed: {}", e.what());
        }
    }
    for (uint32_t id : ids) {
        for (const auto &instance : live_->instances()) instance->on_revoke(id);
        streams_[id].assigned = false;
        streams_[id].next_offset = -1;
    }
    logger("pipeline")->info("revoked {} partition(s)", parts.size());
}

// ---- the processing loop --------------------------------------------------------------------

void Pipeline::poll_plugins(bool force) {
    auto now = std::chrono::steady_clock::now();
    if (!config_.watch_plugins && !force) return;
    if (!force && now - last_plugin_poll_ < std::chrono::milliseconds(kPluginPollIntervalMs)) return;
    last_plugin_poll_ = now;
    std::vector<PluginEvent> events = plugins_->poll();
    if (events.empty()) return;
    LiveInstances::Report report = live_->apply(events);
    counters_.plugin_swaps.fetch_add(report.added + report.replaced + report.removed, std::memory_order_relaxed);
    order_dirty_ = true;
}

void Pipeline::tick_stages(bool force) {
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_tick_ < std::chrono::milliseconds(kTickIntervalMs)) return;
    last_tick_ = now;
    int64_t wall = wall_clock_ms();
    for (PluginInstance *instance : execution_order_)
        if (instance->has_tick()) instance->tick(wall);
}

void Pipeline::process_batch(std::vector<MessagePtr> &messages) {
    raw_.clear();
    batch_messages_.clear();
    const rd_kafka_topic_t *last_rkt = nullptr;
    int32_t last_partition = -1;
    uint32_t id = 0;
    uint64_t bytes = 0;
    uint64_t skipped = 0;
    for (const MessagePtr &m : messages) {
        if (m->rkt != last_rkt || m->partition != last_partition) {  // records come in runs
            id = stream_id(rd_kafka_topic_name(m->rkt), m->partition);
            last_rkt = m->rkt;
            last_partition = m->partition;
        }
        if (skip_before_ms_ >= 0 && rd_kafka_message_timestamp(m.get(), nullptr) < skip_before_ms_) {
            streams_[id].next_offset = m->offset + 1;  // read, before the bounded run's start time
            ++skipped;
            continue;
        }
        raw_.push_back(RawRecord{static_cast<const char *>(m->payload), m->payload ? m->len : 0, id, m->offset});
        batch_messages_.push_back(m.get());
        bytes += m->len;
    }
    counters_.consumed.fetch_add(messages.size() - skipped, std::memory_order_relaxed);
    counters_.skipped_before_start.fetch_add(skipped, std::memory_order_relaxed);
    counters_.bytes_consumed.fetch_add(bytes, std::memory_order_relaxed);

    decoder_->decode(raw_, batch_);
    for (const Rejection &rejection : batch_.rejections())
        dead_letter_message(*batch_messages_[rejection.input_index], rejection.reason, rejection.detail);
    counters_.decode_rejected.fetch_add(batch_.rejections().size(), std::memory_order_relaxed);
    counters_.decoded.fetch_add(batch_.size(), std::memory_order_relaxed);

    if (batch_.size() > 0)
        for (PluginInstance *instance : execution_order_) instance->process(batch_.view());

    for (const RawRecord &record : raw_) streams_[record.stream].next_offset = record.offset + 1;
    counters_.batches.fetch_add(1, std::memory_order_relaxed);
}

bool Pipeline::process_once(int poll_timeout_ms) {
    poll_plugins(false);
    if (order_dirty_) refresh_execution_order();
    std::vector<MessagePtr> messages = consumer_->poll(config_.max_batch, poll_timeout_ms);
    if (order_dirty_) refresh_execution_order();  // a rebalance inside poll() may add instances
    if (!messages.empty()) process_batch(messages);
    tick_stages(false);
    if (std::chrono::steady_clock::now() - last_seal_ >= std::chrono::milliseconds(config_.commit_interval_ms))
        seal_epoch();
    commit_durable_epochs();
    return !messages.empty();
}

void Pipeline::fail(const std::string &message) {
    logger("pipeline")->error("pipeline stopped: {}", message);
    std::lock_guard lock(stats_mutex_);
    if (error_.empty()) error_ = message;
    failed_ = true;
}

void Pipeline::finish(bool close_windows, int timeout_ms) {
    if (finished_) return;
    finished_ = true;
    if (!failed_) {
        try {
            for (PluginInstance *instance : execution_order_) instance->flush(close_windows);
            drain_and_commit(timeout_ms, {});
        } catch (const std::exception &e) {
            fail(e.what());
        }
    }
    try {
        consumer_->close();  // leaves the group
    } catch (const std::exception &e) {
        logger("pipeline")->warn("leaving the group: {}", e.what());
    }
    producer_->flush(timeout_ms);
}

void Pipeline::start() {
    if (started_) throw Error(IOTS_ERR_STATE, "the pipeline was already started");
    started_ = true;
    consumer_->subscribe(config_.input_topics);
    started_at_ = std::chrono::steady_clock::now();
    last_seal_ = started_at_;
    running_ = true;
    thread_ = std::thread([this] { run_loop(); });
}

void Pipeline::run_loop() {
    try {
        while (!stop_requested_.load(std::memory_order_acquire)) process_once(config_.poll_timeout_ms);
    } catch (const std::exception &e) {
        fail(e.what());
    }
}

void Pipeline::stop(bool close_windows, int timeout_ms) {
    if (!started_) throw Error(IOTS_ERR_STATE, "the pipeline was not started");
    if (!running_) return;
    stop_requested_ = true;
    if (thread_.joinable()) thread_.join();
    // The processing thread has ended: this thread now has the instances to itself.
    finish(close_windows, timeout_ms);
    running_ = false;
    if (failed_) {
        std::lock_guard lock(stats_mutex_);
        throw Error(IOTS_ERR_KAFKA, error_);
    }
}

void Pipeline::run_bounded(int timeout_ms) {
    if (started_) throw Error(IOTS_ERR_STATE, "the pipeline was already started");
    started_ = true;
    started_at_ = std::chrono::steady_clock::now();
    last_seal_ = started_at_;
    const auto deadline = timeout_ms < 0 ? std::chrono::steady_clock::time_point::max()
                                         : started_at_ + std::chrono::milliseconds(timeout_ms);
    rd_kafka_t *rk = consumer_->handle();

    // The partitions of every input topic, with their end offsets as of now.
    TopicPartitions parts;
    for (const std::string &topic : config_.input_topics) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
        const rd_kafka_metadata_t *metadata = nullptr;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &metadata, 10000);
        rd_kafka_topic_destroy(rkt);
        if (err) throw Error(IOTS_ERR_KAFKA, "metadata of topic " + topic + ": " + rd_kafka_err2str(err));
        for (int t = 0; t < metadata->topic_cnt; ++t) {
            const auto &tm = metadata->topics[t];
            if (tm.err) {
                std::string text = rd_kafka_err2str(tm.err);
                rd_kafka_metadata_destroy(metadata);
                throw Error(IOTS_ERR_KAFKA, "topic " + topic + ": " + text);
            }
            for (int p = 0; p < tm.partition_cnt; ++p) parts.emplace_back(topic, tm.partitions[p].id);
        }
        rd_kafka_metadata_destroy(metadata);
    }
    std::vector<Consumer::CommitPoint> committed;
    if (config_.bounded_start == "committed") committed = consumer_->committed(parts, 10000);

    std::unique_ptr<rd_kafka_topic_partition_list_t, decltype(&rd_kafka_topic_partition_list_destroy)> list(
        rd_kafka_topic_partition_list_new(static_cast<int>(parts.size())), &rd_kafka_topic_partition_list_destroy);
    std::vector<uint32_t> pending;
    for (const auto &[topic, partition] : parts) {
        int64_t low = 0, high = 0;
        if (rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &high, 10000))
            throw Error(IOTS_ERR_KAFKA, "end offset of " + topic + "[" + std::to_string(partition) + "]: " +
                                            rd_kafka_err2str(err));
        uint32_t id = stream_id(topic, partition);
        Stream &stream = streams_[id];
        stream.assigned = true;
        stream.end_offset = high;
        stream.begin_offset = low;
        int64_t start = low;
        for (const auto &point : committed)
            if (point.topic == topic && point.partition == partition && point.offset >= 0) {
                start = std::max(point.offset, low);
                stream.watermark_ms = parse_watermark_metadata(point.metadata);
            }
        if (config_.bounded_start_offset >= 0) start = std::clamp(config_.bounded_start_offset, low, high);
        auto *tp = rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition);
        tp->offset = config_.bounded_start_time_ms >= 0 ? config_.bounded_start_time_ms : start;  // time: resolved below
        for (const auto &instance : live_->instances()) instance->on_assign(id, stream.watermark_ms);
    }
    if (config_.bounded_start_time_ms >= 0) {
        if (rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, list.get(), 10000))
            throw Error(IOTS_ERR_KAFKA, std::string("offsets for start_time_ms: ") + rd_kafka_err2str(err));
        // No offset for the time (no record at/after it, or a broker that cannot look it up, as
        // the embedded one): read the partition from its start and skip older records by their
        // timestamps. The result is the same; only more is read.
        for (int i = 0; i < list->cnt; ++i)
            if (list->elems[i].offset < 0)
                list->elems[i].offset = streams_[stream_id(list->elems[i].topic, list->elems[i].partition)].begin_offset;
        skip_before_ms_ = config_.bounded_start_time_ms;
    }
    // A partition is pending while its start is before its end; one with nothing to read never
    // gets a consumer position, so it must not be waited for.
    for (int i = 0; i < list->cnt; ++i) {
        uint32_t id = stream_id(list->elems[i].topic, list->elems[i].partition);
        if (list->elems[i].offset < streams_[id].end_offset) pending.push_back(id);
    }
    if (rd_kafka_resp_err_t err = rd_kafka_assign(rk, list.get()))
        throw Error(IOTS_ERR_KAFKA, std::string("assigning the input partitions: ") + rd_kafka_err2str(err));
    logger("pipeline")->info("bounded run over {} partition(s), {} with data to read", parts.size(), pending.size());

    // Done when every partition has been read up to its end offset as of the start. The
    // consumer's position also counts: it moves past records that are never delivered.
    auto all_done = [&] {
        for (uint32_t id : pending) {
            Stream &stream = streams_[id];
            if (stream.next_offset >= stream.end_offset) continue;
            auto *one = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(one, stream.topic.c_str(), stream.partition);
            rd_kafka_position(rk, one);
            int64_t position = one->elems[0].offset;
            rd_kafka_topic_partition_list_destroy(one);
            if (position < stream.end_offset) return false;
        }
        return true;
    };
    try {
        while (!all_done()) {
            if (std::chrono::steady_clock::now() >= deadline)
                throw Error(IOTS_ERR_TIMED_OUT, "bounded run did not reach the end offsets within " +
                                                    std::to_string(timeout_ms) + " ms");
            process_once(config_.poll_timeout_ms);
        }
    } catch (const std::exception &e) {
        fail(e.what());
        finish(false, 10000);
        throw;
    }
    finish(/*close_windows=*/true, timeout_ms < 0 ? 60000 : std::max(1000, timeout_ms));
    if (failed_) {
        std::lock_guard lock(stats_mutex_);
        throw Error(IOTS_ERR_KAFKA, error_);
    }
}

Json Pipeline::stats() const {
    Json out;
    out["running"] = running_.load();
    out["failed"] = failed_.load();
    out["consumed"] = counters_.consumed.load();
    out["bytes_consumed"] = counters_.bytes_consumed.load();
    out["decoded"] = counters_.decoded.load();
    out["batches"] = counters_.batches.load();
    out["alerts"] = counters_.alerts.load();
    out["outputs"] = {{"sent", counters_.outputs_sent.load()},
                      {"delivered", counters_.outputs_delivered.load()},
                      {"failed", counters_.outputs_failed.load()}};
    out["skipped_before_start"] = counters_.skipped_before_start.load();
    out["commits"] = counters_.commits.load();
    out["commit_failures"] = counters_.commit_failures.load();
    out["plugin_swaps"] = counters_.plugin_swaps.load();
    uint64_t decode_rejected = counters_.decode_rejected.load();
    uint64_t stage_dead_lettered = counters_.stage_dead_lettered.load();
    {
        std::lock_guard lock(stats_mutex_);
        out["error"] = error_;
        out["dead_lettered"] = {{"decoder", decode_rejected},
                                {"stages", stage_dead_lettered},
                                {"total", decode_rejected + stage_dead_lettered},
                                {"by_reason", dead_letter_reasons_}};
        out["emitted"] = emitted_by_output_;
    }
    {
        std::lock_guard lock(rules_mutex_);
        out["rules"] = rule_names_;
    }
    if (consumer_) {
        iots_consumer_stats_t cs = consumer_->stats();
        out["prefetched"] = cs.queue_depth;
        out["rebalances"] = cs.rebalances;
    }
    if (producer_) out["output_queue"] = producer_->stats().queue_depth;
    double elapsed = started_ ? std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count() : 0;
    out["elapsed_s"] = elapsed;
    return out;
}

}  // namespace iotstream

// ---- C API ----------------------------------------------------------------------------------

using namespace iotstream;

struct iots_pipeline_s {
    std::unique_ptr<Pipeline> pipeline;
};

namespace {
iots_err_t write_json_out(const std::string &text, char *buf, size_t buf_size, size_t *needed) {
    if (needed) *needed = text.size() + 1;
    if (!buf || buf_size < text.size() + 1) return IOTS_ERR_BUFFER_TOO_SMALL;
    std::memcpy(buf, text.c_str(), text.size() + 1);
    return IOTS_OK;
}
}  // namespace

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
        pipeline->pipeline->stop(close_windows != 0, timeout_ms);
    });
}

IOTS_EXPORT iots_err_t iots_pipeline_stats_json(iots_pipeline_t *pipeline, char *buf, size_t buf_size,
                                                size_t *needed) {
    return guard(nullptr, 0, [&] {
        require_arg(pipeline, "pipeline");
        return write_json_out(pipeline->pipeline->stats().dump(), buf, buf_size, needed);
    });
}

IOTS_EXPORT void iots_pipeline_destroy(iots_pipeline_t *pipeline) {
    try {
        delete pipeline;
    } catch (...) {
    }
}

}  // extern "C"
