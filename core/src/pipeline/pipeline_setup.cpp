// Building a pipeline: its clients (the output producer, the consumer), its plugin instances and
// their execution order, per-stage metrics and stream ids; and tearing it down.
#include <algorithm>

#include "common/log.hpp"
#include "pipeline/commit_epochs.hpp"
#include "pipeline/dead_letter.hpp"
#include "pipeline/host_table.hpp"
#include "pipeline/pipeline.hpp"
#include "pipeline/sinks.hpp"

namespace iotstream {

Pipeline::Pipeline(const Json &document)
    : config_(PipelineConfig::from_json(document)), host_api_(make_host_api()) {
    schema_ = std::make_shared<const DecoderSchema>(DecoderSchema::from_json(config_.decoder, "pipeline config: decoder"));
    decoder_ = std::make_unique<Decoder>(schema_);
    open_epoch_ = std::make_unique<CommitEpoch>();
    rule_names_.reserve(kMaxRules);  // rule_name() hands out pointers into these strings

    build_clients();

    plugins_ = std::make_unique<PluginDirectory>(config_.plugin_dir);
    LiveInstances::Hooks hooks;
    // A replaced stage hands the open state of every assigned partition to its new version.
    hooks.streams = [this] {
        std::vector<uint32_t> assigned;
        for (uint32_t id = 0; id < streams_.size(); ++id)
            if (streams_[id].assigned) assigned.push_back(id);
        return assigned;
    };
    // A configured stage is refused at run time as at start: removing its file leaves it running.
    hooks.required = [this](std::string_view name) {
        return std::any_of(config_.stages.begin(), config_.stages.end(),
                           [&](const StageSpec &spec) { return spec.plugin == name; });
    };
    live_ = std::make_unique<LiveInstances>([this](const PluginRef &plugin) { return make_instance(plugin); },
                                            std::move(hooks));
    live_->add(plugins_->plugins());
    counters_.plugins_loaded = plugins_->plugins().size();
    counters_.plugins_rejected = plugins_->rejections().size();
    // A configured stage that is not live is an error now, with the reason it is not.
    for (const StageSpec &spec : config_.stages) {
        if (live_->find(spec.plugin)) continue;
        if (PluginRef plugin = plugins_->find(spec.plugin)) (void)make_instance(plugin);  // throws its reason
        std::string why = "stage '" + spec.plugin + "' has no plugin in " + config_.plugin_dir.string();
        for (const PluginRejection &rejection : plugins_->rejections()) why += "; rejected: " + rejection.reason;
        throw Error(IOTS_ERR_PLUGIN, why);
    }
    refresh_execution_order();
    build_sinks();
}

Pipeline::~Pipeline() {
    try {
        if (started_) stop(false, 10000);
    } catch (...) {
    }
    sinks_.clear();  // joins their threads: nothing acknowledges an epoch after this
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
    // librdkafka's own default rather than the seed's 16 KB (producer_defaults()): with 16 KB
    // batches of ~300-byte results the output producer's broker thread sent ~50 records per
    // request and took a third of the pipeline's CPU; linger.ms, not the batch size, bounds the
    // latency (docs/pipeline.md#client-defaults, docs/benchmarks.md).
    if (!pk.contains("batch.size")) pk["batch.size"] = 1000000;
    if (!pk.contains("compression.type")) pk["compression.type"] = "lz4";
    if (!producer_config.contains("queue_full_timeout_ms")) producer_config["queue_full_timeout_ms"] = 120000;
    if (pk.contains("transactional.id"))
        throw Error(IOTS_ERR_CONFIG, "pipeline config: producer.kafka: 'transactional.id' is set by the pipeline; use "
                                     "\"processing\": {\"guarantee\": \"exactly_once\", \"transactional_id\": ...}");
    if (config_.exactly_once) {  // transactions.cpp
        pk["transactional.id"] = config_.transactional_id.empty() ? derive_transactional_id(config_.group_id)
                                                                   : config_.transactional_id;
        // An open transaction of a crashed member holds back read_committed readers until the
        // broker aborts it: keep that short, yet well above one epoch's commit.
        if (!pk.contains("transaction.timeout.ms"))
            pk["transaction.timeout.ms"] = std::to_string(std::max(10000, 4 * config_.commit_interval_ms));
    }
    producer_config_ = producer_config;  // exactly_once: a producer with a fatal error is made again
    producer_ = std::make_unique<Producer>(producer_config, [this](const iots_delivery_report_t &report,
                                                                   const rd_kafka_message_t &message) {
        on_delivery(report, message);
    });
    // A dead letter must fit what the producer sends: by default half of it, at most 512 KiB.
    const auto max_message = static_cast<int64_t>(producer_->max_message_bytes());
    if (config_.dead_letter_max_bytes > max_message)
        throw Error(IOTS_ERR_CONFIG, "pipeline config: limits: 'dead_letter_max_bytes' (" +
                                         std::to_string(config_.dead_letter_max_bytes) +
                                         ") must not exceed the producer's message.max.bytes (" +
                                         std::to_string(max_message) + ")");
    dead_letter_max_bytes_ = static_cast<size_t>(
        config_.dead_letter_max_bytes >= 0
            ? config_.dead_letter_max_bytes
            : std::max<int64_t>(std::min<int64_t>(max_message / 2, 512 * 1024), kMinDeadLetterBytes));

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
    if (plugin->is_sink()) {  // built by build_sinks(), never a stage
        if (spec)
            throw Error(IOTS_ERR_CONFIG, "pipeline config: stage '" + name + "' is a sink plugin; list it under 'sinks'");
        return nullptr;
    }
    if (spec) {
        config = spec->config;
    } else if (plugin->is_rule()) {  // every rule plugin in the folder joins the rules stage
        if (auto it = config_.rule_configs.find(name); it != config_.rule_configs.end()) config = it->second;
    } else {
        logger("pipeline")->info("plugin {} is loaded but not a stage of this pipeline", plugin->label());
        return nullptr;
    }
    auto ctx = std::make_unique<iots_host_ctx_s>(iots_host_ctx_s{this, name, logger("plugin." + name)});
    ctx->metrics = stage_metrics(name);
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
    execution_metrics_.clear();
    for (PluginInstance *instance : execution_order_) execution_metrics_.push_back(stage_metrics(instance->name()));
    order_dirty_ = false;
}

StageMetrics *Pipeline::stage_metrics(std::string_view name) {
    std::lock_guard lock(stats_mutex_);
    auto it = stage_metrics_.find(name);
    if (it == stage_metrics_.end()) it = stage_metrics_.emplace(std::string(name), std::make_unique<StageMetrics>()).first;
    return it->second.get();
}

uint32_t Pipeline::stream_id(const std::string &topic, int32_t partition) {
    auto key = std::make_pair(topic, partition);
    if (auto it = stream_ids_.find(key); it != stream_ids_.end()) return it->second;
    auto id = static_cast<uint32_t>(streams_.size());
    Stream stream;
    stream.topic = topic;
    stream.partition = partition;
    streams_.push_back(std::move(stream));
    stream_ids_.emplace(std::move(key), id);
    return id;
}
}  // namespace iotstream
