// The output topics as an OutputSink (output_sink.hpp): every record emitted to one of the
// pipeline's outputs is sent to its topic by the output producer inside its commit epoch, and
// the delivery report closes the epoch's count. No single record stops the pipeline: a dead
// letter is cut to fit the DLQ, an output refused for good is dead-lettered, and one that
// failed for a transient reason is sent again, each inside the epoch of the original.
//
// Kafka-only, and so not in OutputSink: dead letters (dead_letter()), re-sending failed
// outputs on the processing thread (resend_failed_outputs()), the output tap, and the
// producer itself for exactly-once mode, whose transactions (transactions.cpp) commit this
// sink's records with the offsets (commits_with_transaction()).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kafka/producer.hpp"
#include "pipeline/output_sink.hpp"
#include "pipeline/pipeline_config.hpp"
#include "pipeline/pipeline_counters.hpp"

namespace iotstream {

class KafkaSink final : public OutputSink {
public:
    // Called with the reason of every dead letter this sink makes of a refused output.
    using DeadLetterCount = std::function<void(std::string_view reason)>;
    // Makes the output producer from the pipeline config (idempotent; transactional when
    // exactly-once). `config` and `counters` must outlive the sink.
    KafkaSink(const PipelineConfig &config, PipelineCounters &counters, DeadLetterCount count_dead_letter);
    KafkaSink(const KafkaSink &) = delete;
    KafkaSink &operator=(const KafkaSink &) = delete;

    std::string_view name() const override { return "kafka"; }
    // Every output of the pipeline has a topic.
    // Every output: the pipeline emits only outputs it has a topic for (the defaults are always
    // there), and emit() looks that topic up; asking here too was a second lookup per record.
    bool wants(std::string_view) const override { return true; }
    // Sends to the output's topic; a record librdkafka refuses at once is dead-lettered.
    void emit(std::string_view output, std::string_view key, std::string_view value, int64_t event_time_ms,
              CommitEpoch *epoch) override;
    // Flushes the producer, sending again (or dead-lettering) what failed meanwhile.
    bool wait_acknowledged(Deadline deadline) override;
    bool commits_with_transaction() const override { return config_.exactly_once; }
    // The "outputs" counters of stats().
    Json stats() const override;

    // A dead letter of (key, value) with `headers`, cut to fit the DLQ, sent in `epoch`.
    // Returns true when it was cut.
    bool dead_letter(std::string_view key, std::string_view value, std::vector<KafkaHeader> headers,
                     CommitEpoch *epoch);
    // Processing thread: sends again (or dead-letters) the outputs librdkafka gave up on since
    // the last call; true when there were any.
    bool resend_failed_outputs();
    // Before the producer's first send only (the delivery thread reads it without a lock).
    void set_output_tap(iots_output_tap_fn tap, void *opaque);
    Producer &producer() { return *producer_; }
    const Producer &producer() const { return *producer_; }
    // Exactly-once, after a fatal producer error: a new producer with the same config (and so
    // the same transactional.id); the caller initialises its transactions.
    void replace_producer();

private:
    void send(std::string_view topic, std::string_view key, std::string_view value,
              std::span<const KafkaHeader> headers, CommitEpoch *epoch);
    void on_delivery(const iots_delivery_report_t &report, const rd_kafka_message_t &message);
    void tap_output(const iots_delivery_report_t &report, const rd_kafka_message_t &message) const;
    void dead_letter_refused_output(std::string_view topic, std::string_view key, std::string_view value,
                                    std::span<const KafkaHeader> headers, rd_kafka_resp_err_t error,
                                    CommitEpoch *epoch);
    std::unique_ptr<Producer> make_producer();

    const PipelineConfig &config_;  // its outputs name the topics, "dlq" the dead letters'
    PipelineCounters &counters_;
    DeadLetterCount count_dead_letter_;
    Json producer_config_;  // the output producer's, for replace_producer()
    std::unique_ptr<Producer> producer_;
    std::vector<std::unique_ptr<Producer>> retired_producers_;
    size_t dead_letter_max_bytes_ = 0;

    // Outputs librdkafka gave up on with a transient or record-level error, copied on the
    // delivery thread; the processing thread sends them again or dead-letters them. Each
    // still counts in its epoch's `outstanding` until its replacement is sent.
    struct FailedOutput {
        std::string topic;
        std::optional<std::string> key;
        std::string value;
        std::vector<std::pair<std::string, std::string>> headers;
        rd_kafka_resp_err_t error;
        CommitEpoch *epoch;
    };
    std::mutex failed_outputs_mutex_;
    std::vector<FailedOutput> failed_outputs_;
    std::chrono::steady_clock::time_point last_retry_warning_{};

    // The output tap (iotstream.h) and each output topic's name for it.
    iots_output_tap_fn output_tap_ = nullptr;
    void *output_tap_opaque_ = nullptr;
    std::map<std::string, std::string, std::less<>> output_name_by_topic_;
};

}  // namespace iotstream
