// Internal to the Consumer's files (consumer_group, consumer_poll, consumer_offsets): librdkafka
// partition lists owned by a unique_ptr, their conversion to (topic, partition) pairs, and the
// checks that turn a call's or a partition's error into Error(IOTS_ERR_KAFKA).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <librdkafka/rdkafka.h>

#include "common/error.hpp"
#include "kafka/consumer.hpp"

namespace iotstream::partition_list {

struct Deleter {
    void operator()(rd_kafka_topic_partition_list_t *list) const noexcept {
        rd_kafka_topic_partition_list_destroy(list);
    }
};
using Owned = std::unique_ptr<rd_kafka_topic_partition_list_t, Deleter>;

inline Owned make(size_t capacity) {
    return Owned(rd_kafka_topic_partition_list_new(static_cast<int>(std::max<size_t>(capacity, 1))));
}

inline TopicPartitions to_pairs(const rd_kafka_topic_partition_list_t *list) {
    TopicPartitions out;
    if (list == nullptr) return out;
    out.reserve(static_cast<size_t>(list->cnt));
    for (int i = 0; i < list->cnt; ++i) out.emplace_back(list->elems[i].topic, list->elems[i].partition);
    return out;
}

inline std::string describe(const rd_kafka_topic_partition_t &tp) {
    return std::string(tp.topic) + "[" + std::to_string(tp.partition) + "]";
}

// Throws with librdkafka's text for the call's error, or for the first partition that failed.
inline void check(rd_kafka_resp_err_t err, const rd_kafka_topic_partition_list_t *list, const std::string &what) {
    std::string problems;
    for (int i = 0; list != nullptr && i < list->cnt; ++i)
        if (list->elems[i].err)
            problems += (problems.empty() ? "" : ", ") + describe(list->elems[i]) + ": " +
                        rd_kafka_err2str(list->elems[i].err);
    if (err)
        throw Error(IOTS_ERR_KAFKA, what + " failed: " + rd_kafka_err2str(err) +
                                        (problems.empty() ? "" : " (" + problems + ")"));
    if (!problems.empty()) throw Error(IOTS_ERR_KAFKA, what + " failed: " + problems);
}

inline void check_error_object(rd_kafka_error_t *error, const std::string &what) {
    if (error == nullptr) return;
    std::string text = rd_kafka_error_string(error);
    rd_kafka_error_destroy(error);
    throw Error(IOTS_ERR_KAFKA, what + " failed: " + text);
}

// The current assignment, owned. Throws Error(IOTS_ERR_KAFKA).
inline Owned assignment_of(rd_kafka_t *rk) {
    rd_kafka_topic_partition_list_t *list = nullptr;
    if (rd_kafka_resp_err_t err = rd_kafka_assignment(rk, &list))
        throw Error(IOTS_ERR_KAFKA, std::string("reading the assignment failed: ") + rd_kafka_err2str(err));
    return Owned(list);
}

inline int remaining_ms(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<int64_t>(0, left.count()));
}

}  // namespace iotstream::partition_list
