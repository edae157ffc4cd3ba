// Outputs: every result, alert and dead letter is sent to its topic inside the open commit
// epoch; delivery reports close the epoch's count. No single record stops the pipeline: a
// dead letter is cut to fit the DLQ, an output refused for good is dead-lettered, and one
// that failed for a transient reason is sent again, each inside the epoch of the original.
#include <string>

#include "common/log.hpp"
#include "pipeline/commit_epochs.hpp"
#include "pipeline/dead_letter.hpp"
#include "pipeline/pipeline.hpp"

namespace iotstream {

namespace {
constexpr std::string_view kOutputRefused = "output_refused";
constexpr auto kRetryWarningInterval = std::chrono::seconds(10);
}  // namespace

void Pipeline::send_output(std::string_view topic, std::string_view key, std::string_view value,
                           std::span<const KafkaHeader> headers, CommitEpoch *epoch) {
    if (epoch == nullptr) epoch = open_epoch_.get();
    epoch->outstanding.fetch_add(1, std::memory_order_relaxed);
    try {
        producer_->send(topic, key, value, headers, epoch);
    } catch (const KafkaSendError &e) {
        epoch->outstanding.fetch_sub(1, std::memory_order_relaxed);
        // Exactly-once: the transaction already failed (a delivery did) and takes no more
        // records; it is aborted and redone at the next seal, so this one is not lost.
        if (config_.exactly_once &&
            (e.kafka_error() == RD_KAFKA_RESP_ERR__STATE || e.kafka_error() == RD_KAFKA_RESP_ERR__FATAL)) {
            epoch->delivery_failed.store(true);
            return;
        }
        // Refused before it left (larger than message.max.bytes): as if the broker had refused it.
        if (classify_output_failure(e.kafka_error()) != OutputFailure::refused) throw;
        counters_.outputs_sent.fetch_add(1, std::memory_order_relaxed);  // sent = delivered + refused + ...
        dead_letter_refused_output(topic, key, value, headers, e.kafka_error(), epoch);
        return;
    } catch (...) {
        epoch->outstanding.fetch_sub(1, std::memory_order_relaxed);
        throw;  // a result that cannot be sent stops the pipeline before anything is committed
    }
    counters_.outputs_sent.fetch_add(1, std::memory_order_relaxed);
}

void Pipeline::set_output_tap(iots_output_tap_fn tap, void *opaque) {
    if (started_) throw Error(IOTS_ERR_STATE, "the output tap can only be set before the pipeline starts");
    output_name_by_topic_.clear();
    for (const auto &[name, topic] : config_.outputs) output_name_by_topic_.emplace(topic, name);
    output_tap_ = tap;
    output_tap_opaque_ = opaque;
}

void Pipeline::tap_output(const iots_delivery_report_t &report, const rd_kafka_message_t &message) const {
    const char *topic = report.topic ? report.topic : "";
    auto name = output_name_by_topic_.find(std::string_view(topic));
    iots_output_record_t record{sizeof(iots_output_record_t),
                                name != output_name_by_topic_.end() ? name->second.c_str() : topic,
                                topic,
                                static_cast<const char *>(message.key),
                                message.key ? message.key_len : 0,
                                static_cast<const char *>(message.payload),
                                message.payload ? message.len : 0};
    try {
        output_tap_(output_tap_opaque_, &record);
    } catch (...) {
        // A C++ host's exception must not unwind through librdkafka's delivery thread.
        logger("pipeline")->error("the output tap threw; the exception was dropped");
    }
}

void Pipeline::on_delivery(const iots_delivery_report_t &report, const rd_kafka_message_t &message) {
    auto *epoch = static_cast<CommitEpoch *>(report.msg_opaque);
    if (report.err == IOTS_OK) {
        counters_.outputs_delivered.fetch_add(1, std::memory_order_relaxed);
        if (epoch) epoch->outstanding.fetch_sub(1, std::memory_order_acq_rel);
        if (output_tap_ != nullptr) tap_output(report, message);
        return;
    }
    // Exactly-once: librdkafka makes the transaction abortable; it is aborted and redone whole.
    if (epoch && !config_.exactly_once && classify_output_failure(message.err) != OutputFailure::fatal) {
        // Copied now (librdkafka frees it after this call); the epoch stays open until the
        // processing thread has sent its replacement.
        FailedOutput failed{report.topic ? report.topic : "", std::nullopt,
                            std::string(static_cast<const char *>(message.payload), message.payload ? message.len : 0),
                            {}, message.err, epoch};
        if (message.key) failed.key.emplace(static_cast<const char *>(message.key), message.key_len);
        rd_kafka_headers_t *headers = nullptr;
        if (rd_kafka_message_headers(&message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            const char *name;
            const void *value;
            size_t size;
            for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
                failed.headers.emplace_back(name, std::string(static_cast<const char *>(value), value ? size : 0));
        }
        std::lock_guard lock(failed_outputs_mutex_);
        failed_outputs_.push_back(std::move(failed));
        return;
    }
    counters_.outputs_failed.fetch_add(1, std::memory_order_relaxed);
    if (epoch) epoch->delivery_failed.store(true);
    logger("pipeline")->error("output to {} failed: {}", report.topic ? report.topic : "?",
                              report.errstr ? report.errstr : "");
    if (epoch) epoch->outstanding.fetch_sub(1, std::memory_order_acq_rel);
}

bool Pipeline::resend_failed_outputs() {
    std::vector<FailedOutput> failed;
    {
        std::lock_guard lock(failed_outputs_mutex_);
        failed.swap(failed_outputs_);
    }
    for (const FailedOutput &output : failed) {
        std::vector<KafkaHeader> headers(output.headers.begin(), output.headers.end());
        std::string_view key = output.key ? std::string_view(*output.key) : std::string_view();
        if (classify_output_failure(output.error) == OutputFailure::transient) {
            counters_.outputs_retried.fetch_add(1, std::memory_order_relaxed);
            if (auto now = std::chrono::steady_clock::now(); now - last_retry_warning_ >= kRetryWarningInterval) {
                last_retry_warning_ = now;
                logger("pipeline")->warn("output to {} failed ({}); sending it again ({} re-sent so far)",
                                         output.topic, rd_kafka_err2str(output.error),
                                         counters_.outputs_retried.load(std::memory_order_relaxed));
            }
            send_output(output.topic, key, output.value, headers, output.epoch);
        } else {
            dead_letter_refused_output(output.topic, key, output.value, headers, output.error, output.epoch);
        }
        // The failed attempt: its replacement now keeps the epoch open.
        output.epoch->outstanding.fetch_sub(1, std::memory_order_acq_rel);
    }
    return !failed.empty();
}

void Pipeline::dead_letter_refused_output(std::string_view topic, std::string_view key, std::string_view value,
                                          std::span<const KafkaHeader> headers, rd_kafka_resp_err_t error,
                                          CommitEpoch *epoch) {
    counters_.outputs_refused.fetch_add(1, std::memory_order_relaxed);
    const std::string &dlq = config_.outputs.at("dlq");
    if (topic == dlq) {
        // The dead-letter topic refused a dead letter (its broker takes less than our producer):
        // what is left to send is its headers alone.
        if (value.empty())
            throw Error(IOTS_ERR_KAFKA, "the dead-letter topic " + dlq +
                                            " refused a dead letter without a value: " + rd_kafka_err2str(error));
        logger("pipeline")->warn("{} refused a dead letter of {} bytes ({}); sending its headers alone", dlq,
                                 value.size(), rd_kafka_err2str(error));
        DeadLetter letter(key, value, {headers.begin(), headers.end()}, dead_letter_max_bytes_, /*drop_value=*/true);
        counters_.dead_letters_truncated.fetch_add(1, std::memory_order_relaxed);
        send_output(dlq, letter.key(), letter.value(), letter.headers(), epoch);
        return;
    }
    const std::string detail = std::string(topic) + ": " + rd_kafka_err2str(error);
    DeadLetter letter(key, value,
                      {{dead_letter_header::reason, kOutputRefused},
                       {dead_letter_header::detail, detail},
                       {dead_letter_header::output, topic},
                       {dead_letter_header::error, rd_kafka_err2name(error)}},
                      dead_letter_max_bytes_);
    logger("pipeline")->warn("output of {} bytes to {} refused ({}); dead-lettered", value.size(), topic,
                             rd_kafka_err2str(error));
    send_output(dlq, letter.key(), letter.value(), letter.headers(), epoch);
    counters_.outputs_dead_lettered.fetch_add(1, std::memory_order_relaxed);
    if (letter.truncated()) counters_.dead_letters_truncated.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(stats_mutex_);
    ++dead_letter_reasons_[std::string(kOutputRefused)];
}

void Pipeline::dead_letter_message(const rd_kafka_message_t &message, std::string_view reason,
                                   std::string_view detail) {
    std::string source = std::string(rd_kafka_topic_name(message.rkt)) + ":" + std::to_string(message.partition) +
                         ":" + std::to_string(message.offset);
    DeadLetter letter(
        std::string_view(static_cast<const char *>(message.key), message.key ? message.key_len : 0),
        std::string_view(static_cast<const char *>(message.payload), message.payload ? message.len : 0),
        {{dead_letter_header::reason, reason}, {dead_letter_header::detail, detail}, {dead_letter_header::source, source}},
        dead_letter_max_bytes_);
    send_output(config_.outputs.at("dlq"), letter.key(), letter.value(), letter.headers());
    if (letter.truncated()) counters_.dead_letters_truncated.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(stats_mutex_);
    ++dead_letter_reasons_[std::string(reason)];
}

}  // namespace iotstream
