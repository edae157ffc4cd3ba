// Outputs: every result, alert and dead letter is sent to its topic inside the open commit
// epoch; delivery reports close the epoch's count.
#include <string>

#include "common/log.hpp"
#include "pipeline/commit_epochs.hpp"
#include "pipeline/pipeline.hpp"

namespace iotstream {

void Pipeline::send_output(std::string_view topic, std::string_view key, std::string_view value,
                           std::span<const KafkaHeader> headers) {
    CommitEpoch *epoch = open_epoch_.get();
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
    auto *epoch = static_cast<CommitEpoch *>(report.msg_opaque);
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

}  // namespace iotstream
