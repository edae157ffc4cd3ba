// The C API of the consumer (iotstream.h: iots_consumer_*, iots_batch_*).
#include <algorithm>
#include <cstring>
#include <mutex>

#include "kafka/consumer.hpp"

struct iots_batch_s {
    std::shared_ptr<rd_kafka_t> client;  // the records' memory belongs to it
    std::vector<iotstream::MessagePtr> messages;
    std::vector<iots_record_t> records;
};

struct iots_consumer_s {
    std::unique_ptr<iotstream::Consumer> consumer;
    iots_rebalance_cb_t rebalance_cb = nullptr;
    void *rebalance_opaque = nullptr;
    std::mutex lag_mutex;
    std::vector<iotstream::PartitionLag> last_lag;  // backs the topic strings handed out by lag
};

using namespace iotstream;

namespace {

Consumer &live(iots_consumer_t *handle) {
    require_arg(handle, "consumer");
    return *handle->consumer;
}

void report_rebalance(iots_consumer_t *handle, iots_rebalance_t kind, const TopicPartitions &parts) {
    if (handle->rebalance_cb == nullptr) return;
    std::vector<iots_topic_partition_t> view;
    view.reserve(parts.size());
    for (const auto &[topic, partition] : parts) view.push_back({topic.c_str(), partition});
    handle->rebalance_cb(handle->rebalance_opaque, kind, view.data(), view.size());
}

std::unique_ptr<iots_batch_s> make_batch(Consumer &consumer, std::vector<MessagePtr> messages) {
    auto batch = std::make_unique<iots_batch_s>();
    batch->client = consumer.shared_handle();
    batch->records.reserve(messages.size());
    for (const auto &m : messages) {
        rd_kafka_timestamp_type_t type;
        int64_t timestamp = rd_kafka_message_timestamp(m.get(), &type);
        batch->records.push_back({rd_kafka_topic_name(m->rkt), m->partition, m->offset,
                                  type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : timestamp, m->key, m->key_len,
                                  m->payload, m->len});
    }
    batch->messages = std::move(messages);
    return batch;
}

}  // namespace

extern "C" {

IOTS_EXPORT iots_err_t iots_consumer_new(const char *config_json, iots_rebalance_cb_t rebalance_cb,
                                         void *rebalance_opaque, iots_consumer_t **consumerp, char *errstr,
                                         size_t errstr_size) {
    return guard(errstr, errstr_size, [&] {
        require_arg(consumerp, "consumerp");
        *consumerp = nullptr;
        Json config = parse_config(config_json, "consumer config");
        auto handle = std::make_unique<iots_consumer_s>();
        handle->rebalance_cb = rebalance_cb;
        handle->rebalance_opaque = rebalance_opaque;
        iots_consumer_s *raw = handle.get();
        Consumer::Hooks hooks;
        hooks.on_assign = [raw](const TopicPartitions &parts) { report_rebalance(raw, IOTS_REBALANCE_ASSIGN, parts); };
        hooks.on_revoke = [raw](const TopicPartitions &parts) { report_rebalance(raw, IOTS_REBALANCE_REVOKE, parts); };
        handle->consumer = std::make_unique<Consumer>(config, std::move(hooks));
        *consumerp = handle.release();
    });
}

IOTS_EXPORT iots_err_t iots_consumer_subscribe(iots_consumer_t *consumer, const char *const *topics, size_t count,
                                               char *errstr, size_t errstr_size) {
    return guard(errstr, errstr_size, [&] {
        Consumer &c = live(consumer);
        if (topics == nullptr && count > 0) throw Error(IOTS_ERR_INVALID_ARG, "argument 'topics' is NULL");
        std::vector<std::string> names;
        for (size_t i = 0; i < count; ++i) {
            if (topics[i] == nullptr) throw Error(IOTS_ERR_INVALID_ARG, "topics[" + std::to_string(i) + "] is NULL");
            names.emplace_back(topics[i]);
        }
        c.subscribe(names);
    });
}

IOTS_EXPORT iots_err_t iots_consumer_poll_batch(iots_consumer_t *consumer, size_t max_records, int timeout_ms,
                                                iots_batch_t **batchp, char *errstr, size_t errstr_size) {
    return guard(errstr, errstr_size, [&] {
        Consumer &c = live(consumer);
        require_arg(batchp, "batchp");
        *batchp = nullptr;
        *batchp = make_batch(c, c.poll(max_records, timeout_ms)).release();
    });
}

IOTS_EXPORT size_t iots_batch_count(const iots_batch_t *batch) { return batch ? batch->records.size() : 0; }

IOTS_EXPORT const iots_record_t *iots_batch_record(const iots_batch_t *batch, size_t index) {
    return batch && index < batch->records.size() ? &batch->records[index] : nullptr;
}

IOTS_EXPORT void iots_batch_destroy(iots_batch_t *batch) { delete batch; }

IOTS_EXPORT iots_err_t iots_consumer_commit_batch(iots_consumer_t *consumer, const iots_batch_t *batch,
                                                  char *errstr, size_t errstr_size) {
    return guard(errstr, errstr_size, [&] {
        Consumer &c = live(consumer);
        require_arg(batch, "batch");
        c.commit_records(batch->messages);
    });
}

IOTS_EXPORT iots_err_t iots_consumer_process(iots_consumer_t *consumer, size_t max_records, int timeout_ms,
                                             iots_batch_handler_t handler, void *opaque, size_t *processed,
                                             char *errstr, size_t errstr_size) {
    if (processed) *processed = 0;
    return guard(errstr, errstr_size, [&]() -> iots_err_t {
        Consumer &c = live(consumer);
        if (handler == nullptr) throw Error(IOTS_ERR_INVALID_ARG, "argument 'handler' is NULL");
        auto batch = make_batch(c, c.poll(max_records, timeout_ms));
        if (batch->records.empty()) {
            write_errstr(errstr, errstr_size, "");
            return IOTS_OK;
        }
        int rc = handler(opaque, batch.get());
        if (rc != 0) {
            size_t rewound = c.rewind(batch->messages, 10000);
            write_errstr(errstr, errstr_size,
                         "handler returned " + std::to_string(rc) + "; " + std::to_string(rewound) + " of " +
                             std::to_string(batch->records.size()) + " records will be delivered again");
            return IOTS_ERR_HANDLER;
        }
        c.commit_records(batch->messages);
        if (processed) *processed = batch->records.size();
        write_errstr(errstr, errstr_size, "");
        return IOTS_OK;
    });
}

IOTS_EXPORT iots_err_t iots_consumer_pause(iots_consumer_t *consumer) {
    return guard(nullptr, 0, [&] { live(consumer).pause_all(); });
}

IOTS_EXPORT iots_err_t iots_consumer_resume(iots_consumer_t *consumer) {
    return guard(nullptr, 0, [&] { live(consumer).resume_all(); });
}

IOTS_EXPORT iots_err_t iots_consumer_lag(iots_consumer_t *consumer, iots_partition_lag_t *out, size_t capacity,
                                         size_t *count, int timeout_ms) {
    return guard(nullptr, 0, [&] {
        Consumer &c = live(consumer);
        require_arg(count, "count");
        if (out == nullptr && capacity > 0) throw Error(IOTS_ERR_INVALID_ARG, "argument 'out' is NULL");
        std::vector<PartitionLag> lag = c.lag(timeout_ms);
        std::lock_guard lock(consumer->lag_mutex);
        consumer->last_lag = std::move(lag);
        *count = consumer->last_lag.size();
        for (size_t i = 0; i < std::min(capacity, consumer->last_lag.size()); ++i) {
            const PartitionLag &entry = consumer->last_lag[i];
            out[i] = {entry.topic.c_str(), entry.partition, entry.position, entry.committed,
                      entry.high_watermark, entry.lag};
        }
    });
}

IOTS_EXPORT iots_err_t iots_consumer_get_stats(iots_consumer_t *consumer, iots_consumer_stats_t *stats) {
    return guard(nullptr, 0, [&] {
        Consumer &c = live(consumer);
        require_arg(stats, "stats");
        if (stats->struct_size < sizeof(iots_consumer_stats_t))
            throw Error(IOTS_ERR_INVALID_ARG, "stats->struct_size is smaller than iots_consumer_stats_t");
        size_t caller_size = stats->struct_size;
        *stats = c.stats();
        stats->struct_size = caller_size;
    });
}

IOTS_EXPORT iots_err_t iots_consumer_close(iots_consumer_t *consumer) {
    return guard(nullptr, 0, [&] {
        require_arg(consumer, "consumer");
        std::unique_ptr<iots_consumer_s> owned(consumer);
        owned->consumer->close();
    });
}

}  // extern "C"
