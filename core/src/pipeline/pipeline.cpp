// The runner: builds the clients and plugin instances, then consume -> decode -> stages,
// tick and seal on the processing thread; start/stop and the end of a run.
#include "pipeline/pipeline.hpp"

#include "common/clock.hpp"
#include "common/log.hpp"
#include "pipeline/commit_epochs.hpp"
#include "pipeline/dead_letter.hpp"
#include "pipeline/host_table.hpp"
#include "pipeline/sinks.hpp"

namespace iotstream {

namespace {
constexpr int kTickIntervalMs = 100;
constexpr int kPluginPollIntervalMs = 250;
// How long the pipeline thread waits for a full sink before it pauses the input instead.
constexpr auto kSinkWaitBeforePause = std::chrono::seconds(1);
}  // namespace

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

void Pipeline::build_sinks() {
    for (const SinkSpec &spec : config_.sinks) {
        PluginRef plugin = plugins_->find(spec.plugin);
        if (!plugin) {
            std::string why = "sink '" + spec.plugin + "' has no plugin in " + config_.plugin_dir.string();
            for (const PluginRejection &rejection : plugins_->rejections()) why += "; rejected: " + rejection.reason;
            throw Error(IOTS_ERR_PLUGIN, why);
        }
        if (!plugin->is_sink())
            throw Error(IOTS_ERR_CONFIG, "pipeline config: sink '" + spec.plugin + "' names a " + plugin->kind_name() +
                                             " plugin, not a sink (" + plugin->file().string() + ")");
        auto ctx = std::make_unique<iots_host_ctx_s>(iots_host_ctx_s{this, spec.plugin, logger("sink." + spec.plugin)});
        std::unique_ptr<PluginInstance> instance;
        try {
            instance = std::make_unique<PluginInstance>(plugin, spec.config, &host_api_, ctx.get());
        } catch (const Error &e) {
            throw Error(e.code(), "pipeline config: sink '" + spec.plugin + "': " + e.what());
        }
        auto runner = std::make_unique<SinkRunner>(std::move(instance),
                                                   std::set<std::string, std::less<>>(spec.outputs.begin(),
                                                                                      spec.outputs.end()),
                                                   spec.max_batch, spec.max_queued_batches);
        ctx->sink = runner.get();
        runner->start();
        contexts_.push_back(std::move(ctx));
        sinks_.push_back(std::move(runner));
    }
}

void Pipeline::to_sinks(std::string_view output, std::string_view key, std::string_view value,
                        int64_t event_time_ms) {
    for (const auto &sink : sinks_)
        if (sink->wants(output)) sink->add(output, key, value, event_time_ms, open_epoch_.get());
}

int Pipeline::sink_backpressure(int poll_timeout_ms) {
    if (sinks_.empty()) return poll_timeout_ms;
    using Clock = std::chrono::steady_clock;
    auto room_by = [&](Clock::time_point deadline) {  // a failed sink has room: its failure stops the run
        return std::all_of(sinks_.begin(), sinks_.end(), [&](const auto &sink) { return sink->wait_for_room(deadline); });
    };
    auto waited_since = [&](Clock::time_point since) {
        counters_.sink_waited_ns.fetch_add(
            static_cast<uint64_t>(std::chrono::nanoseconds(Clock::now() - since).count()), std::memory_order_relaxed);
    };
    const auto start = Clock::now();
    if (!paused_for_sinks_) {
        if (room_by(start)) return poll_timeout_ms;
        // Full. A sink usually frees room within milliseconds, and pausing costs a refetch of
        // what was prefetched: wait here first, a poll timeout at a time (so a stop is seen),
        // for at most kSinkWaitBeforePause; rebalances wait that long at most.
        counters_.sink_waits.fetch_add(1, std::memory_order_relaxed);
        const auto give_up = start + kSinkWaitBeforePause;
        while (!stop_requested_.load(std::memory_order_acquire)) {
            if (room_by(std::min(give_up, Clock::now() + std::chrono::milliseconds(poll_timeout_ms)))) {
                waited_since(start);
                return poll_timeout_ms;
            }
            if (Clock::now() >= give_up) break;
        }
        if (stop_requested_.load(std::memory_order_acquire)) {
            waited_since(start);
            return 0;
        }
        // Still full: pause the input and go on polling (rebalances, stop, ticks, commits).
        consumer_->pause_all();
        paused_for_sinks_ = true;
        paused_since_ = start;
        counters_.sink_input_pauses.fetch_add(1, std::memory_order_relaxed);
    }
    if (!room_by(start + std::chrono::milliseconds(poll_timeout_ms))) return 0;  // poll() only serves callbacks
    consumer_->resume_all();
    paused_for_sinks_ = false;
    waited_since(paused_since_);
    return poll_timeout_ms;
}

void Pipeline::throw_if_sink_failed() const {
    for (const auto &sink : sinks_)
        if (std::string why = sink->failure(); !why.empty())
            throw Error(IOTS_ERR_PLUGIN, why + "; the pipeline stops, nothing after the last commit is committed (the "
                                               "records will be processed again on restart)");
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
    counters_.plugins_added.fetch_add(report.added, std::memory_order_relaxed);
    counters_.plugins_replaced.fetch_add(report.replaced, std::memory_order_relaxed);
    counters_.plugins_removed.fetch_add(report.removed, std::memory_order_relaxed);
    counters_.plugins_failed.fetch_add(report.failed, std::memory_order_relaxed);
    counters_.plugins_refused.fetch_add(report.refused, std::memory_order_relaxed);
    counters_.plugins_loaded = plugins_->plugins().size();
    counters_.plugins_rejected = plugins_->rejections().size();
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
    uint64_t replayed = 0;
    bool replaying = false;  // a record some stage handled under the previous owner
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
        if (m->offset < streams_[id].replay_end) {
            replaying = true;
            replayed += m->offset < streams_[id].read_through;
        }
        raw_.push_back(RawRecord{static_cast<const char *>(m->payload), m->payload ? m->len : 0, id, m->offset});
        batch_messages_.push_back(m.get());
        bytes += m->len;
    }
    counters_.consumed.fetch_add(messages.size() - skipped, std::memory_order_relaxed);
    counters_.skipped_before_start.fetch_add(skipped, std::memory_order_relaxed);
    counters_.bytes_consumed.fetch_add(bytes, std::memory_order_relaxed);
    counters_.replayed.fetch_add(replayed, std::memory_order_relaxed);

    decoder_->decode(raw_, batch_);
    if (config_.max_open_sensors_per_partition > 0 && batch_.size() > 0) limit_open_sensors();
    for (const Rejection &rejection : batch_.rejections()) {
        const RawRecord &record = raw_[rejection.input_index];
        if (replaying && record.offset < streams_[record.stream].read_through) {
            counters_.replay_outputs_skipped.fetch_add(1, std::memory_order_relaxed);  // dead-lettered before
            continue;
        }
        dead_letter_message(*batch_messages_[rejection.input_index], rejection.reason, rejection.detail);
    }
    counters_.decode_rejected.fetch_add(batch_.rejections().size(), std::memory_order_relaxed);
    counters_.decoded.fetch_add(batch_.size(), std::memory_order_relaxed);

    if (batch_.size() > 0) run_stages(replaying);

    for (const RawRecord &record : raw_) streams_[record.stream].next_offset = record.offset + 1;
    if (replaying)  // a stream whose replay is over reads as an ordinary one again
        for (const RawRecord &record : raw_) {
            Stream &stream = streams_[record.stream];
            if (stream.replay_end >= 0 && stream.next_offset >= stream.replay_end) {
                stream.handled_before.clear();
                stream.read_through = stream.replay_end = -1;
            }
        }
    counters_.batches.fetch_add(1, std::memory_order_relaxed);
}

bool Pipeline::process_once(int poll_timeout_ms) {
    poll_plugins(false);
    if (order_dirty_) refresh_execution_order();
    poll_timeout_ms = sink_backpressure(poll_timeout_ms);
    std::vector<MessagePtr> messages = consumer_->poll(config_.max_batch, poll_timeout_ms);
    if (order_dirty_) refresh_execution_order();  // a rebalance inside poll() may add instances
    if (!messages.empty()) process_batch(messages);
    tick_stages(false);
    resend_failed_outputs();
    if (std::chrono::steady_clock::now() - last_seal_ >= std::chrono::milliseconds(config_.commit_interval_ms))
        seal_epoch();
    commit_durable_epochs();
    refresh_gauges(false);
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
        refresh_gauges(true);  // the last lag and open sensors, while the partitions are still ours
    } catch (const std::exception &e) {
        logger("pipeline")->warn("reading the final gauges: {}", e.what());
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
    if (config_.exactly_once) init_transactions();
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
    running_ = false;
}

void Pipeline::stop(std::optional<bool> close_windows, int timeout_ms) {
    std::lock_guard stopping(stop_mutex_);
    if (!started_) throw Error(IOTS_ERR_STATE, "the pipeline was not started");
    if (stopped_) return;
    stopped_ = true;
    stop_requested_ = true;
    if (thread_.joinable()) thread_.join();
    // The processing thread has ended: this thread now has the instances to itself.
    finish(close_windows.value_or(config_.close_windows_on_stop), timeout_ms);
    if (failed_) {
        std::lock_guard lock(stats_mutex_);
        throw Error(IOTS_ERR_KAFKA, error_);
    }
}
}  // namespace iotstream
