// The sink seam: where the pipeline's output records go. The emit path hands each record to
// every sink that wants its output, inside the open commit epoch; a sink keeps the epoch's
// `outstanding` count up for each record (or batch) until it is acknowledged, and marks the
// epoch `delivery_failed` when it never will be (commit_epochs.hpp). The epoch code seals,
// drains, waits and checks failures through this interface only, so a new kind of sink is a
// new implementation built in Pipeline::build_sinks() (pipeline_sinks.cpp) and nothing else.
//
// Two implementations: KafkaSink (kafka_sink.hpp, the output topics through the producer) and
// PluginSink (plugin_sink.hpp, a sink plugin on its own thread, acknowledging through the host
// table). What only Kafka has stays on KafkaSink and out of this interface: dead letters (they
// are not outputs a sink chooses: every one goes to the DLQ topic with headers), re-sending
// failed records, the output tap, and the transactional producer of exactly-once mode.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/config.hpp"

namespace iotstream {

struct CommitEpoch;

class OutputSink {
public:
    using Deadline = std::chrono::steady_clock::time_point;
    virtual ~OutputSink() = default;

    // For logs and errors.
    virtual std::string_view name() const = 0;
    // True when records emitted to `output` (a name of the pipeline's outputs) go to this sink.
    virtual bool wants(std::string_view output) const = 0;
    // Pipeline thread: one record of `epoch`, counted in its `outstanding` until acknowledged.
    // `event_time_ms` is IOTS_NO_VALUE where the pipeline does not know it.
    virtual void emit(std::string_view output, std::string_view key, std::string_view value, int64_t event_time_ms,
                      CommitEpoch *epoch) = 0;
    // Pipeline thread, before the open epoch is sealed: what the sink buffers for it is handed on.
    virtual void hand_over() {}
    // Why the sink failed for good, or "" (the pipeline then stops, committing nothing past it).
    virtual std::string failure() const { return {}; }
    // Backpressure: waits until the sink has room for more (or failed), at most until
    // `deadline`; true when it has. A sink that never fills returns true at once.
    virtual bool wait_for_room(Deadline) { return true; }
    // Pipeline thread, draining: true once every record emitted so far is acknowledged (or
    // failed), waiting until `deadline`.
    virtual bool wait_acknowledged(Deadline deadline) = 0;
    // Exactly-once: true when the sink's records are committed by the Kafka transaction itself
    // (KafkaSink); every other sink must acknowledge an epoch before its transaction commits.
    virtual bool commits_with_transaction() const { return false; }
    // The sink's counters for stats().
    virtual Json stats() const = 0;
};

}  // namespace iotstream
