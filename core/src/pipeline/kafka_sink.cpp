// The output topics as an OutputSink: sends, delivery reports, re-sends, dead letters of
// refused outputs, the output tap, and the output producer itself (kafka_sink.hpp).
#include "pipeline/kafka_sink.hpp"

#include <algorithm>
#include <string>

#include "common/log.hpp"
#include "pipeline/commit_epochs.hpp"
#include "pipeline/dead_letter.hpp"
#include "pipeline/pipeline.hpp"  // derive_transactional_id

namespace iotstream {

namespace {
constexpr std::string_view kOutputRefused = "output_refused";
constexpr auto kRetryWarningInterval = std::chrono::seconds(10);
}  // namespace

KafkaSink::KafkaSink(const PipelineConfig &config, PipelineCounters &counters, DeadLetterCount count_dead_letter)
    : config_(config), counters_(counters), count_dead_letter_(std::move(count_dead_letter)) {
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
    producer_ = make_producer();
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
}

std::unique_ptr<Producer> KafkaSink::make_producer() {
    return std::make_unique<Producer>(producer_config_, [this](const iots_delivery_report_t &report,
                                                               const rd_kafka_message_t &message) {
        on_delivery(report, message);
    });
}

void KafkaSink::replace_producer() {
    char reason[512] = "";
    rd_kafka_fatal_error(producer_->handle(), reason, sizeof reason);
    logger("pipeline")->warn("exactly-once: the output producer hit a fatal error ({}); replacing it", reason);
    producer_->close(0);  // fails what it still holds (reported against the retired epoch)
    // Kept, not freed: stats() may be reading it on another thread right now.
    retired_producers_.push_back(std::move(producer_));
    producer_ = make_producer();
}

void KafkaSink::emit(std::string_view output, std::string_view key, std::string_view value, int64_t,
                     CommitEpoch *epoch) {
    send(config_.outputs.find(output)->second, key, value, {}, epoch);
}

bool KafkaSink::dead_letter(std::string_view key, std::string_view value, std::vector<KafkaHeader> headers,
                            CommitEpoch *epoch) {
    DeadLetter letter(key, value, std::move(headers), dead_letter_max_bytes_);
    send(config_.outputs.at("dlq"), letter.key(), letter.value(), letter.headers(), epoch);
    if (letter.truncated()) counters_.dead_letters_truncated.fetch_add(1, std::memory_order_relaxed);
    return letter.truncated();
}

bool KafkaSink::wait_acknowledged(Deadline deadline) {
    // Outputs that failed are sent again or dead-lettered, and those need acknowledging too.
    bool settled = false;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        settled = producer_->flush(static_cast<int>(std::max<int64_t>(0, left.count())));
        if (!resend_failed_outputs()) break;
        settled = false;
        if (std::chrono::steady_clock::now() >= deadline) break;
    }
    return settled;
}

Json KafkaSink::stats() const {
    return {{"sent", counters_.outputs_sent.load()},
            {"delivered", counters_.outputs_delivered.load()},
            {"failed", counters_.outputs_failed.load()},
            {"refused", counters_.outputs_refused.load()},
            {"retried", counters_.outputs_retried.load()}};
}

void KafkaSink::set_output_tap(iots_output_tap_fn tap, void *opaque) {
    output_name_by_topic_.clear();
    for (const auto &[name, topic] : config_.outputs) output_name_by_topic_.emplace(topic, name);
    output_tap_ = tap;
    output_tap_opaque_ = opaque;
}

void KafkaSink::send(std::string_view topic, std::string_view key, std::string_view value,
                     std::span<const KafkaHeader> headers, CommitEpoch *epoch) {
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

void KafkaSink::tap_output(const iots_delivery_report_t &report, const rd_kafka_message_t &message) const {
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

void KafkaSink::on_delivery(const iots_delivery_report_t &report, const rd_kafka_message_t &message) {
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

bool KafkaSink::resend_failed_outputs() {
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
            send(output.topic, key, output.value, headers, output.epoch);
        } else {
            dead_letter_refused_output(output.topic, key, output.value, headers, output.error, output.epoch);
        }
        // The failed attempt: its replacement now keeps the epoch open.
        output.epoch->outstanding.fetch_sub(1, std::memory_order_acq_rel);
    }
    return !failed.empty();
}

void KafkaSink::dead_letter_refused_output(std::string_view topic, std::string_view key, std::string_view value,
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
        send(dlq, letter.key(), letter.value(), letter.headers(), epoch);
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
    send(dlq, letter.key(), letter.value(), letter.headers(), epoch);
    counters_.outputs_dead_lettered.fetch_add(1, std::memory_order_relaxed);
    if (letter.truncated()) counters_.dead_letters_truncated.fetch_add(1, std::memory_order_relaxed);
    count_dead_letter_(kOutputRefused);
}

}  // namespace iotstream
