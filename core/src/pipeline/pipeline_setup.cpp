// Building a pipeline: its clients (the output topics' sink, the consumer), its plugin instances and
// their execution order, per-stage metrics and stream ids; and tearing it down.
#include <algorithm>

#include "common/log.hpp"
#include "pipeline/commit_epochs.hpp"
#include "pipeline/host_table.hpp"
#include "pipeline/kafka_sink.hpp"
#include "pipeline/pipeline.hpp"

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
    sinks_.clear();
    configured_sinks_.clear();  // joins their threads: nothing acknowledges an epoch after this
    live_.reset();  // instances go before the contexts and clients they use
    consumer_.reset();
    kafka_.reset();
}

void Pipeline::build_clients() {
    // The output topics come first in sinks_: records reach Kafka before any sink plugin.
    kafka_ = std::make_unique<KafkaSink>(config_, counters_, [this](std::string_view reason) {
        std::lock_guard lock(stats_mutex_);
        ++dead_letter_reasons_[std::string(reason)];
    });
    sinks_.push_back(kafka_.get());

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
