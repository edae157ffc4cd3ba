// The pipeline's side of its output sinks (output_sink.hpp): building the sink plugins from
// the config, the emit path (every sink that wants an output gets the record in the open
// epoch), dead letters of input records (Kafka's), the output tap, backpressure
// (docs/sinks.md#backpressure) and a sink's permanent failure.
#include <algorithm>

#include "common/log.hpp"
#include "pipeline/commit_epochs.hpp"
#include "pipeline/dead_letter.hpp"
#include "pipeline/host_table.hpp"
#include "pipeline/kafka_sink.hpp"
#include "pipeline/pipeline.hpp"
#include "pipeline/plugin_sink.hpp"

namespace iotstream {

namespace {
// How long the pipeline thread waits for a full sink before it pauses the input instead.
constexpr auto kSinkWaitBeforePause = std::chrono::seconds(1);
}  // namespace

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
        auto sink = std::make_unique<PluginSink>(std::move(instance),
                                                 std::set<std::string, std::less<>>(spec.outputs.begin(),
                                                                                    spec.outputs.end()),
                                                 spec.max_batch, spec.max_queued_batches);
        ctx->sink = sink.get();
        sink->start();
        contexts_.push_back(std::move(ctx));
        sinks_.push_back(sink.get());
        configured_sinks_.push_back(std::move(sink));
    }
}

void Pipeline::emit_output(std::string_view output, std::string_view key, std::string_view value,
                           int64_t event_time_ms) {
    for (OutputSink *sink : sinks_)
        if (sink->wants(output)) sink->emit(output, key, value, event_time_ms, open_epoch_.get());
}

void Pipeline::dead_letter_message(const rd_kafka_message_t &message, std::string_view reason,
                                   std::string_view detail) {
    std::string source = std::string(rd_kafka_topic_name(message.rkt)) + ":" + std::to_string(message.partition) +
                         ":" + std::to_string(message.offset);
    kafka_->dead_letter(
        std::string_view(static_cast<const char *>(message.key), message.key ? message.key_len : 0),
        std::string_view(static_cast<const char *>(message.payload), message.payload ? message.len : 0),
        {{dead_letter_header::reason, reason}, {dead_letter_header::detail, detail}, {dead_letter_header::source, source}},
        open_epoch_.get());
    std::lock_guard lock(stats_mutex_);
    ++dead_letter_reasons_[std::string(reason)];
}

void Pipeline::set_output_tap(iots_output_tap_fn tap, void *opaque) {
    if (started_) throw Error(IOTS_ERR_STATE, "the output tap can only be set before the pipeline starts");
    kafka_->set_output_tap(tap, opaque);
}

int Pipeline::sink_backpressure(int poll_timeout_ms) {
    using Clock = std::chrono::steady_clock;
    auto room_by = [&](Clock::time_point deadline) {  // a failed sink has room: its failure stops the run
        return std::all_of(sinks_.begin(), sinks_.end(), [&](OutputSink *sink) { return sink->wait_for_room(deadline); });
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
    for (const OutputSink *sink : sinks_)
        if (std::string why = sink->failure(); !why.empty())
            throw Error(IOTS_ERR_PLUGIN, why + "; the pipeline stops, nothing after the last commit is committed (the "
                                               "records will be processed again on restart)");
}
}  // namespace iotstream
