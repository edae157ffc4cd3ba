// Sinks (plugin.h "Sinks", ABI 1.3): each configured sink gets the records emitted to its
// outputs in batches, on a thread of its own, and acknowledges them through the host table.
// A batch belongs to the commit epoch open while it filled and keeps that epoch's
// `outstanding` count up until the sink acknowledges it, so offsets are committed only once
// the sink has the outputs (as for Kafka deliveries). A failed batch marks its epoch failed:
// nothing is committed past it, and the pipeline stops naming the sink.
// At most `max_queued` batches are handed over and not yet acknowledged before full() says so;
// the pipeline then pauses its input (Pipeline::sink_backpressure, docs/sinks.md#backpressure).
// One implementation of OutputSink (output_sink.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/config.hpp"
#include "pipeline/output_sink.hpp"
#include "plugin_host/plugin_instance.hpp"

namespace iotstream {

class PluginSink final : public OutputSink {
public:
    PluginSink(std::unique_ptr<PluginInstance> instance, std::set<std::string, std::less<>> outputs, size_t max_batch,
               size_t max_queued);
    // Stops the thread (queued batches are not written, their epochs stay open), then destroys
    // the instance.
    ~PluginSink();
    PluginSink(const PluginSink &) = delete;
    PluginSink &operator=(const PluginSink &) = delete;

    // Must be called once the runner is at its final address (the context points at it).
    void start();
    std::string_view name() const override { return instance_->name(); }
    bool wants(std::string_view output) const override { return outputs_.count(output) != 0; }
    // Adds the record to the open batch of `epoch` (a full batch is queued).
    void emit(std::string_view output, std::string_view key, std::string_view value, int64_t event_time_ms,
              CommitEpoch *epoch) override;
    // Queues the open batch.
    void hand_over() override;
    // Any thread (host->sink_ack): 0, or 1 for an unknown token.
    int ack(uint64_t token, int status, const char *detail);
    std::string failure() const override;
    // True while max_queued batches or more are handed over and not acknowledged.
    bool full() const;
    // Waits until the sink is not full (or failed), at most until `deadline`; true when it is not.
    bool wait_for_room(Deadline deadline) override;
    // True when every batch handed over was acknowledged, waiting until `deadline`.
    bool wait_acknowledged(Deadline deadline) override;
    Json stats() const override;

private:
    struct Batch {
        uint64_t token = 0;
        CommitEpoch *epoch = nullptr;
        std::vector<std::string> outputs, keys, values;
        std::vector<int64_t> event_times;
    };
    void run();

    std::unique_ptr<PluginInstance> instance_;
    std::set<std::string, std::less<>> outputs_;
    size_t max_batch_;
    size_t max_queued_;
    std::unique_ptr<Batch> open_;  // pipeline thread only
    uint64_t next_token_ = 1;

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<std::unique_ptr<Batch>> queue_;     // handed over, not yet written
    struct Unacked {
        CommitEpoch *epoch;
        size_t records;
    };
    std::map<uint64_t, Unacked> unacked_;  // handed over, not yet acknowledged
    std::string failure_;
    bool stopping_ = false;
    uint64_t batches_ = 0, records_ = 0, acked_ = 0, failed_ = 0, acked_records_ = 0, failed_records_ = 0;
    size_t peak_unacked_ = 0;  // the most batches ever handed over and not acknowledged at once
    std::thread thread_;
};

}  // namespace iotstream
