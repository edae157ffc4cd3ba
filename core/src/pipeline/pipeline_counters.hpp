// The pipeline's monotonic counters (stats() reads them), shared by the runner and its sinks.
#pragma once

#include <atomic>
#include <cstdint>

namespace iotstream {

// Monotonic counters, readable from any thread.
struct PipelineCounters {
    std::atomic<uint64_t> consumed{0}, decoded{0}, decode_rejected{0}, stage_dead_lettered{0};
    std::atomic<uint64_t> alerts{0}, outputs_sent{0}, outputs_delivered{0}, outputs_failed{0};
    // Outputs librdkafka gave up on: refused for good (then dead-lettered), or sent again.
    std::atomic<uint64_t> outputs_refused{0}, outputs_retried{0};
    std::atomic<uint64_t> outputs_dead_lettered{0}, dead_letters_truncated{0};
    std::atomic<uint64_t> batches{0}, commits{0}, commit_failures{0}, committed_epochs{0}, plugin_swaps{0};
    // Commits not sent while this member rejoined the group (a later one supersedes each).
    std::atomic<uint64_t> commits_deferred{0};
    std::atomic<uint64_t> bytes_consumed{0};
    std::atomic<uint64_t> skipped_before_start{0};  // bounded runs from a time: older records read, not processed
    // Replays after a restore: records read again that the previous owner had decoded, and the
    // outputs (alerts, dead letters) not sent again because it had sent them.
    std::atomic<uint64_t> replayed{0}, replay_outputs_skipped{0};
    // Exactly-once mode (transactions.cpp): transactions committed and aborted (each abort
    // rewinds the assigned partitions to their last commit).
    std::atomic<uint64_t> transactions_committed{0}, transactions_aborted{0};
    // Plugin folder changes applied at run time (LiveInstances::Report), and the folder now.
    std::atomic<uint64_t> plugins_added{0}, plugins_replaced{0}, plugins_removed{0}, plugins_failed{0},
        plugins_refused{0};
    std::atomic<uint64_t> plugins_loaded{0}, plugins_rejected{0};
    // Sink backpressure: times a full sink was waited for, times the input was paused for one,
    // and how long the input was held back in all.
    std::atomic<uint64_t> sink_waits{0}, sink_input_pauses{0}, sink_waited_ns{0};
    // steady_clock nanoseconds of the last commit the consumer accepted; 0: none yet.
    std::atomic<int64_t> last_commit_ns{0};
};

}  // namespace iotstream
