#include "kafka/consumer.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <set>

#include "common/log.hpp"
#include "kafka/producer.hpp"

namespace iotstream {

namespace {

struct PartitionListDeleter {
    void operator()(rd_kafka_topic_partition_list_t *list) const noexcept {
        rd_kafka_topic_partition_list_destroy(list);
    }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

PartitionList new_list(size_t capacity) {
    return PartitionList(rd_kafka_topic_partition_list_new(static_cast<int>(std::max<size_t>(capacity, 1))));
}

TopicPartitions to_pairs(const rd_kafka_topic_partition_list_t *list) {
    TopicPartitions out;
    if (list == nullptr) return out;
    out.reserve(static_cast<size_t>(list->cnt));
    for (int i = 0; i < list->cnt; ++i) out.emplace_back(list->elems[i].topic, list->elems[i].partition);
    return out;
}

std::string describe(const rd_kafka_topic_partition_t &tp) {
    return std::string(tp.topic) + "[" + std::to_string(tp.partition) + "]";
}

// Throws with librdkafka's text for the call's error, or for the first partition that failed.
void check_partitions(rd_kafka_resp_err_t err, const rd_kafka_topic_partition_list_t *list,
                      const std::string &what) {
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

void check_error_object(rd_kafka_error_t *error, const std::string &what) {
    if (error == nullptr) return;
    std::string text = rd_kafka_error_string(error);
    rd_kafka_error_destroy(error);
    throw Error(IOTS_ERR_KAFKA, what + " failed: " + text);
}

// Prefetch raised well above librdkafka's defaults: a consumer doing real work between polls
// otherwise starves on fetch round trips (~0.24M/s with defaults vs ~1.5M/s raised, measured).
KafkaProperties consumer_defaults() {
    return {
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "false"},
        {"queued.min.messages", "200000"},
        {"queued.max.messages.kbytes", "262144"},
    };
}

// Kafka protocol request types (ApiKey) the group membership is followed by.
constexpr int16_t kApiJoinGroup = 11;
// librdkafka releases before 2.3.0 abort in rd_kafka_destroy() when a cooperative-sticky member
// is destroyed after a JoinGroup answer and before its first assignment: the assignor is chosen,
// its state not yet made (librdkafka issue #4312, fixed by #4381 in 2.3.0).
constexpr int kFirstFixedAssignorStateVersion = 0x020300ff;

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<int64_t>(0, left.count()));
}

}  // namespace

Consumer::Consumer(const Json &config, Hooks hooks) : hooks_(std::move(hooks)) {
    ConfigReader reader(config, "consumer config");
    std::string group_id = reader.get_string("group_id", "");
    Json topics = reader.get_json("topics", Json());
    std::string offset_reset = reader.get_string("auto_offset_reset", "earliest");
    KafkaProperties overrides = reader.kafka_properties();
    reader.finish();
    if (group_id.empty()) throw Error(IOTS_ERR_CONFIG, "consumer config: key 'group_id' is required");
    if (offset_reset != "earliest" && offset_reset != "latest")
        throw Error(IOTS_ERR_CONFIG, "consumer config: key 'auto_offset_reset' must be \"earliest\" or "
                                     "\"latest\", got \"" + offset_reset + "\"");
    std::vector<std::string> initial_topics;
    if (!topics.is_null()) {
        if (!topics.is_array()) throw Error(IOTS_ERR_CONFIG, "consumer config: key 'topics' must be an array of names");
        for (const Json &topic : topics) {
            if (!topic.is_string() || topic.get<std::string>().empty())
                throw Error(IOTS_ERR_CONFIG,
                            "consumer config: key 'topics' must hold non-empty names, got " + topic.dump());
            initial_topics.push_back(topic.get<std::string>());
        }
    }
    require_bootstrap_servers(overrides, "consumer config");

    KafkaProperties defaults = consumer_defaults();
    defaults["auto.offset.reset"] = offset_reset;
    if (auto it = overrides.find("auto.offset.reset"); it != overrides.end()) offset_reset = it->second;
    if (auto it = overrides.find("partition.assignment.strategy"); it != overrides.end())
        cooperative_ = it->second == "cooperative-sticky";
    reset_to_earliest_ = offset_reset == "earliest" || offset_reset == "smallest" || offset_reset == "beginning";
    overrides["group.id"] = group_id;  // the documented key wins over a "kafka" group.id
    rd_kafka_conf_t *conf = make_kafka_conf(defaults, overrides);
    install_kafka_logging(conf);
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_rebalance_cb(conf, &Consumer::rebalance_trampoline);
    // Sees this member's JoinGroup requests leave (group_rebalancing()).
    group_watch_ = new GroupWatch;
    if (rd_kafka_resp_err_t err =
            rd_kafka_conf_interceptor_add_on_new(conf, "iotstream-group", &Consumer::on_new_client, group_watch_)) {
        rd_kafka_conf_destroy(conf);
        delete group_watch_;
        throw Error(IOTS_ERR_KAFKA, std::string("consumer config: adding the group interceptor failed: ") +
                                        rd_kafka_err2str(err));
    }
    // Results of commits sent without waiting (commit(points, false)): failures are logged; the
    // next commit supersedes them. Served on the polling thread.
    rd_kafka_conf_set_offset_commit_cb(
        conf, [](rd_kafka_t *, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *, void *) {
            if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
                logger("consumer")->warn("commit failed (a later commit supersedes it): {}", rd_kafka_err2str(err));
        });
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (rk == nullptr) {
        rd_kafka_conf_destroy(conf);
        if (!group_watch_->attached) delete group_watch_;  // else the failed client's on_destroy has it
        throw Error(IOTS_ERR_CONFIG, std::string("consumer config: ") + errstr);
    }
    rk_ = std::shared_ptr<rd_kafka_t>(rk, [](rd_kafka_t *handle) { rd_kafka_destroy(handle); });
    if (!group_watch_->attached) {  // librdkafka logged why; commits are then never deferred
        unattached_watch_.reset(group_watch_);
        logger("consumer")->warn("the group interceptor was not added: commits are not held during rebalances");
    }
    // Errors and logs go to the consumer queue too, so poll() serves everything on one thread.
    rd_kafka_poll_set_consumer(rk);
    consumer_queue_ = rd_kafka_queue_get_consumer(rk);
    if (!initial_topics.empty()) {
        try {
            subscribe(initial_topics);
        } catch (...) {
            close();
            rd_kafka_queue_destroy(consumer_queue_);
            throw;
        }
    }
}

Consumer::~Consumer() {
    try {
        close();
    } catch (const std::exception &e) {
        logger("consumer")->error("closing consumer: {}", e.what());
    }
    if (consumer_queue_ != nullptr) rd_kafka_queue_destroy(consumer_queue_);
}

void Consumer::require_open() const {
    if (closed_) throw Error(IOTS_ERR_STATE, "consumer is closed");
}

void Consumer::subscribe(const std::vector<std::string> &topics) {
    require_open();
    if (topics.empty()) throw Error(IOTS_ERR_INVALID_ARG, "subscribe needs at least one topic");
    auto list = new_list(topics.size());
    for (const auto &topic : topics) {
        if (topic.empty()) throw Error(IOTS_ERR_INVALID_ARG, "topic names must not be empty");
        rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_.get(), list.get());
    if (err) throw Error(IOTS_ERR_KAFKA, std::string("subscribe failed: ") + rd_kafka_err2str(err));
}

rd_kafka_resp_err_t Consumer::on_new_client(rd_kafka_t *rk, const rd_kafka_conf_t *, void *opaque, char *, size_t) {
    auto *watch = static_cast<GroupWatch *>(opaque);
    if (watch->attached) return RD_KAFKA_RESP_ERR__CONFLICT;  // one client per watch
    // On a librdkafka broker thread: nothing here may call librdkafka or block.
    auto on_request_sent = [](rd_kafka_t *, int, const char *, int32_t, int16_t api_key, int16_t, int32_t, size_t,
                              void *ic_opaque) {
        if (api_key == kApiJoinGroup)
            static_cast<GroupWatch *>(ic_opaque)->rejoining.store(true, std::memory_order_release);
        return RD_KAFKA_RESP_ERR_NO_ERROR;
    };
    auto on_response_received = [](rd_kafka_t *, int, const char *, int32_t, int16_t api_key, int16_t, int32_t,
                                   size_t, int64_t, rd_kafka_resp_err_t err, void *ic_opaque) {
        // `err` is the request's, not the answer's error code: a refused join counts too.
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && api_key == kApiJoinGroup)
            static_cast<GroupWatch *>(ic_opaque)->joined.store(true, std::memory_order_release);
        return RD_KAFKA_RESP_ERR_NO_ERROR;
    };
    auto on_destroy = [](rd_kafka_t *, void *ic_opaque) {
        delete static_cast<GroupWatch *>(ic_opaque);
        return RD_KAFKA_RESP_ERR_NO_ERROR;
    };
    if (rd_kafka_resp_err_t err = rd_kafka_interceptor_add_on_request_sent(rk, "iotstream-group", on_request_sent, watch))
        return err;
    if (rd_kafka_resp_err_t err =
            rd_kafka_interceptor_add_on_response_received(rk, "iotstream-group", on_response_received, watch))
        return err;
    if (rd_kafka_resp_err_t err = rd_kafka_interceptor_add_on_destroy(rk, "iotstream-group", on_destroy, watch))
        return err;
    watch->attached = true;
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

void Consumer::rebalance_trampoline(rd_kafka_t *, rd_kafka_resp_err_t err,
                                    rd_kafka_topic_partition_list_t *partitions, void *opaque) {
    static_cast<Consumer *>(opaque)->on_rebalance(err, partitions);
}

void Consumer::on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *partitions) {
    static const auto log = logger("consumer");
    rd_kafka_t *rk = rk_.get();
    // NULL while the client is closing (seen inside rd_kafka_consumer_close): the protocol is
    // then the one of the last rebalance.
    if (const char *protocol = rd_kafka_rebalance_protocol(rk); protocol != nullptr)
        cooperative_ = std::strcmp(protocol, "COOPERATIVE") == 0;
    const bool cooperative = cooperative_;
    // Nothing may unwind through librdkafka's C frames: hooks' exceptions are kept for poll().
    auto run_hook = [&](const std::function<void(const TopicPartitions &)> &hook, const TopicPartitions &parts) {
        if (!hook) return;
        try {
            hook(parts);
        } catch (...) {
            if (!hook_error_) hook_error_ = std::current_exception();
        }
    };
    TopicPartitions parts = to_pairs(partitions);
    // The join is over once the coordinator's answer reaches us as an assignment (or, in the
    // cooperative protocol, a revoke after the sync); a revoke of a lost assignment comes
    // before this member rejoins, and the flag stays as it is.
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ||
        (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && cooperative && !rd_kafka_assignment_lost(rk)))
        group_watch_->rejoining.store(false, std::memory_order_release);
    try {
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
            if (cooperative) {
                if (rd_kafka_error_t *error = rd_kafka_incremental_assign(rk, partitions)) {
                    log->error("incremental assign failed: {}", rd_kafka_error_string(error));
                    rd_kafka_error_destroy(error);
                }
            } else if (rd_kafka_resp_err_t e = rd_kafka_assign(rk, partitions)) {
                log->error("assign failed: {}", rd_kafka_err2str(e));
            }
            group_watch_->assigned.store(true, std::memory_order_release);
            {
                std::lock_guard lock(state_mutex_);
                for (const auto &key : parts) partitions_[key] = PartitionState{};
            }
            if (paused_) rd_kafka_pause_partitions(rk, partitions);
            rebalances_.fetch_add(1, std::memory_order_relaxed);
            log->info("assigned {} partition(s)", parts.size());
            run_hook(hooks_.on_assign, parts);
        } else {
            if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
                log->error("rebalance error: {}; dropping the assignment", rd_kafka_err2str(err));
            else if (rd_kafka_assignment_lost(rk))
                log->warn("{} partition(s) lost (session expired); their uncommitted work is redone elsewhere",
                          parts.size());
            run_hook(hooks_.on_revoke, parts);
            if (collecting_ != nullptr) {
                std::set<PartitionKey> revoked(parts.begin(), parts.end());
                std::erase_if(*collecting_, [&](const MessagePtr &m) {
                    return revoked.count({rd_kafka_topic_name(m->rkt), m->partition}) != 0;
                });
            }
            if (cooperative && err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
                if (rd_kafka_error_t *error = rd_kafka_incremental_unassign(rk, partitions)) {
                    log->error("incremental unassign failed: {}", rd_kafka_error_string(error));
                    rd_kafka_error_destroy(error);
                }
            } else {
                rd_kafka_assign(rk, nullptr);
            }
            {
                std::lock_guard lock(state_mutex_);
                for (const auto &key : parts) partitions_.erase(key);
            }
            rebalances_.fetch_add(1, std::memory_order_relaxed);
            log->info("revoked {} partition(s)", parts.size());
        }
    } catch (...) {
        if (!hook_error_) hook_error_ = std::current_exception();
    }
}

std::vector<MessagePtr> Consumer::poll(size_t max_records, int timeout_ms) {
    static const auto log = logger("consumer");
    require_open();
    if (max_records == 0) throw Error(IOTS_ERR_INVALID_ARG, "max_records must be at least 1");
    std::vector<MessagePtr> batch;
    batch.reserve(std::min<size_t>(max_records, 4096));
    const bool forever = timeout_ms < 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
    collecting_ = &batch;
    struct Reset {
        std::vector<MessagePtr> **slot;
        ~Reset() { *slot = nullptr; }
    } reset{&collecting_};
    // rd_kafka_consumer_poll rather than the batch API: in librdkafka 2.0 the batch API can skip
    // offsets around pause/resume/seek, which this class uses.
    while (batch.size() < max_records) {
        int wait = !batch.empty() ? 0 : forever ? -1 : remaining_ms(deadline);
        rd_kafka_message_t *message = rd_kafka_consumer_poll(rk_.get(), wait);
        if (hook_error_) {
            if (message) rd_kafka_message_destroy(message);
            std::rethrow_exception(std::exchange(hook_error_, nullptr));
        }
        if (message == nullptr) {
            if (!batch.empty() || (!forever && wait == 0)) break;
            continue;
        }
        if (message->err) {
            MessagePtr owned(message);
            if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
            std::string text = rd_kafka_message_errstr(message);
            if (message->err == RD_KAFKA_RESP_ERR__FATAL) throw Error(IOTS_ERR_KAFKA, "fatal consumer error: " + text);
            if (message->rkt)
                log->warn("consumer error on {}[{}]: {}", rd_kafka_topic_name(message->rkt), message->partition, text);
            else
                log->warn("consumer error: {}", text);
            if (!batch.empty()) break;
            continue;
        }
        batch.emplace_back(message);
    }
    if (batch.empty()) return batch;

    uint64_t value_bytes = 0;
    {
        std::lock_guard lock(state_mutex_);
        const rd_kafka_topic_t *last_rkt = nullptr;
        int32_t last_partition = -1;
        PartitionState *state = nullptr;
        for (const auto &m : batch) {
            value_bytes += m->len;
            if (m->rkt != last_rkt || m->partition != last_partition) {  // records come in runs
                state = &partitions_[{rd_kafka_topic_name(m->rkt), m->partition}];
                last_rkt = m->rkt;
                last_partition = m->partition;
            }
            if (state->commit_base < 0) state->commit_base = m->offset;
            state->position = m->offset + 1;
        }
    }
    consumed_.fetch_add(batch.size(), std::memory_order_relaxed);
    bytes_.fetch_add(value_bytes, std::memory_order_relaxed);
    return batch;
}

TopicPartitions Consumer::assignment() const {
    rd_kafka_topic_partition_list_t *list = nullptr;
    if (rd_kafka_resp_err_t err = rd_kafka_assignment(rk_.get(), &list))
        throw Error(IOTS_ERR_KAFKA, std::string("reading the assignment failed: ") + rd_kafka_err2str(err));
    PartitionList owned(list);
    return to_pairs(list);
}

bool Consumer::commit(const std::vector<CommitPoint> &points, bool wait) {
    static const auto log = logger("consumer");
    require_open();
    if (points.empty()) return true;
    if (!wait && group_rebalancing()) return false;  // would cost the whole assignment; see the header
    TopicPartitions owned_list = assignment();
    std::set<PartitionKey> owned(owned_list.begin(), owned_list.end());
    auto list = new_list(points.size());
    for (const auto &point : points) {
        if (point.offset < 0)
            throw Error(IOTS_ERR_INVALID_ARG, "commit offset for " + point.topic + "[" +
                                                  std::to_string(point.partition) + "] must be >= 0");
        if (owned.count({point.topic, point.partition}) == 0) {
            log->info("not committing {}[{}]: no longer assigned to this member", point.topic, point.partition);
            continue;
        }
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_add(list.get(), point.topic.c_str(), point.partition);
        tp->offset = point.offset;
        if (!point.metadata.empty()) {
            // The list frees metadata with free(): allocate it the same way.
            tp->metadata = std::malloc(point.metadata.size());
            if (tp->metadata == nullptr) throw std::bad_alloc();
            std::memcpy(tp->metadata, point.metadata.data(), point.metadata.size());
            tp->metadata_size = point.metadata.size();
        }
    }
    if (list->cnt == 0) return true;
    rd_kafka_resp_err_t err = rd_kafka_commit(rk_.get(), list.get(), wait ? 0 : 1);
    if (wait)
        check_partitions(err, list.get(), "commit");
    else if (err)
        throw Error(IOTS_ERR_KAFKA, std::string("commit failed: ") + rd_kafka_err2str(err));
    uint64_t covered = 0;
    {
        std::lock_guard lock(state_mutex_);
        for (int i = 0; i < list->cnt; ++i) {
            auto it = partitions_.find({list->elems[i].topic, list->elems[i].partition});
            if (it == partitions_.end()) continue;
            PartitionState &state = it->second;
            int64_t offset = list->elems[i].offset;
            if (state.commit_base >= 0 && offset > state.commit_base)
                covered += static_cast<uint64_t>(offset - state.commit_base);
            state.commit_base = offset;
        }
    }
    committed_.fetch_add(covered, std::memory_order_relaxed);
    commits_.fetch_add(1, std::memory_order_relaxed);
    return true;
}

void Consumer::commit_records(std::span<const MessagePtr> records) {
    std::map<PartitionKey, int64_t> next_offsets;
    for (const auto &m : records) {
        int64_t &next = next_offsets[{rd_kafka_topic_name(m->rkt), m->partition}];
        next = std::max(next, m->offset + 1);
    }
    std::vector<CommitPoint> points;
    points.reserve(next_offsets.size());
    for (auto &[key, offset] : next_offsets) points.push_back({key.first, key.second, offset, {}});
    commit(points);
}

std::vector<Consumer::CommitPoint> Consumer::committed(const TopicPartitions &parts, int timeout_ms) {
    require_open();
    std::vector<CommitPoint> out;
    if (parts.empty()) return out;
    auto list = new_list(parts.size());
    for (const auto &[topic, partition] : parts)
        rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition);
    rd_kafka_resp_err_t err = rd_kafka_committed(rk_.get(), list.get(), std::max(timeout_ms, 0));
    check_partitions(err, list.get(), "reading committed offsets");
    out.reserve(parts.size());
    for (int i = 0; i < list->cnt; ++i) {
        const auto &tp = list->elems[i];
        out.push_back({tp.topic, tp.partition, tp.offset >= 0 ? tp.offset : -1,
                       tp.metadata ? std::string(static_cast<const char *>(tp.metadata), tp.metadata_size)
                                   : std::string()});
    }
    return out;
}

void Consumer::seek(const std::string &topic, int32_t partition, int64_t offset, int timeout_ms) {
    require_open();
    if (offset < 0) throw Error(IOTS_ERR_INVALID_ARG, "seek offset must be >= 0");
    auto list = new_list(1);
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = offset;
    check_error_object(rd_kafka_seek_partitions(rk_.get(), list.get(), std::max(timeout_ms, 0)),
                       "seek " + topic + "[" + std::to_string(partition) + "]");
    check_partitions(RD_KAFKA_RESP_ERR_NO_ERROR, list.get(), "seek");
    std::lock_guard lock(state_mutex_);
    if (auto it = partitions_.find({topic, partition}); it != partitions_.end()) it->second.position = offset;
}

size_t Consumer::rewind(std::span<const MessagePtr> records, int timeout_ms) {
    require_open();
    std::map<PartitionKey, std::pair<int64_t, size_t>> first;  // first offset, record count
    for (const auto &m : records) {
        auto [it, inserted] = first.try_emplace({rd_kafka_topic_name(m->rkt), m->partition}, m->offset, 0);
        it->second.first = std::min(it->second.first, m->offset);
        ++it->second.second;
    }
    TopicPartitions owned_list = assignment();
    std::set<PartitionKey> owned(owned_list.begin(), owned_list.end());
    auto list = new_list(first.size());
    size_t rewound = 0;
    for (auto &[key, entry] : first) {
        if (owned.count(key) == 0) continue;  // its new owner starts from the last commit anyway
        rd_kafka_topic_partition_list_add(list.get(), key.first.c_str(), key.second)->offset = entry.first;
        rewound += entry.second;
    }
    if (list->cnt == 0) return 0;
    check_error_object(rd_kafka_seek_partitions(rk_.get(), list.get(), std::max(timeout_ms, 0)), "rewind");
    check_partitions(RD_KAFKA_RESP_ERR_NO_ERROR, list.get(), "rewind");
    {
        std::lock_guard lock(state_mutex_);
        for (int i = 0; i < list->cnt; ++i)
            if (auto it = partitions_.find({list->elems[i].topic, list->elems[i].partition}); it != partitions_.end())
                it->second.position = list->elems[i].offset;
    }
    redelivered_.fetch_add(rewound, std::memory_order_relaxed);
    return rewound;
}

void Consumer::set_paused(bool paused) {
    require_open();
    rd_kafka_topic_partition_list_t *list = nullptr;
    if (rd_kafka_resp_err_t err = rd_kafka_assignment(rk_.get(), &list))
        throw Error(IOTS_ERR_KAFKA, std::string("reading the assignment failed: ") + rd_kafka_err2str(err));
    PartitionList owned(list);
    paused_ = paused;
    if (list->cnt == 0) return;
    rd_kafka_resp_err_t err = paused ? rd_kafka_pause_partitions(rk_.get(), list) : rd_kafka_resume_partitions(rk_.get(), list);
    check_partitions(err, list, paused ? "pause" : "resume");
}

void Consumer::pause_all() { set_paused(true); }
void Consumer::resume_all() { set_paused(false); }

std::vector<PartitionLag> Consumer::lag(int timeout_ms) {
    static const auto log = logger("consumer");
    require_open();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
    rd_kafka_topic_partition_list_t *raw = nullptr;
    if (rd_kafka_resp_err_t err = rd_kafka_assignment(rk_.get(), &raw))
        throw Error(IOTS_ERR_KAFKA, std::string("reading the assignment failed: ") + rd_kafka_err2str(err));
    PartitionList list(raw);
    std::vector<PartitionLag> out(static_cast<size_t>(list->cnt));
    if (list->cnt == 0) return out;
    if (rd_kafka_resp_err_t err = rd_kafka_committed(rk_.get(), list.get(), remaining_ms(deadline)))
        log->warn("lag: committed offsets unavailable: {}", rd_kafka_err2str(err));
    for (int i = 0; i < list->cnt; ++i) {
        const auto &tp = list->elems[i];
        PartitionLag &entry = out[static_cast<size_t>(i)];
        entry.topic = tp.topic;
        entry.partition = tp.partition;
        entry.committed = !tp.err && tp.offset >= 0 ? tp.offset : -1;
        {
            std::lock_guard lock(state_mutex_);
            if (auto it = partitions_.find({entry.topic, entry.partition}); it != partitions_.end())
                entry.position = it->second.position;
        }
        if (entry.position < 0) entry.position = entry.committed;  // where reading resumes
        int64_t low = -1, high = -1;
        // The end offset every fetch response carries (cached by librdkafka) is as fresh as the
        // last fetch and costs nothing; ask the partition leader only when none is cached yet
        // (a round trip per partition: about a second each on the embedded broker).
        if (rd_kafka_get_watermark_offsets(rk_.get(), tp.topic, tp.partition, &low, &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            high < 0 || low < 0) {
            low = high = -1;
            if (rd_kafka_query_watermark_offsets(rk_.get(), tp.topic, tp.partition, &low, &high,
                                                 std::max(remaining_ms(deadline), 1)) != RD_KAFKA_RESP_ERR_NO_ERROR)
                high = -1;
        }
        entry.high_watermark = high >= 0 ? high : -1;
        // Neither read nor committed: reading will start where auto.offset.reset points.
        if (entry.position < 0 && high >= 0) entry.position = reset_to_earliest_ ? std::max<int64_t>(low, 0) : high;
        if (entry.high_watermark >= 0 && entry.position >= 0)
            entry.lag = std::max<int64_t>(0, entry.high_watermark - entry.position);
    }
    return out;
}

iots_consumer_stats_t Consumer::stats() const {
    iots_consumer_stats_t s{};
    s.struct_size = sizeof s;
    s.consumed = consumed_.load(std::memory_order_relaxed);
    s.committed = committed_.load(std::memory_order_relaxed);
    s.commits = commits_.load(std::memory_order_relaxed);
    s.redelivered = redelivered_.load(std::memory_order_relaxed);
    s.bytes = bytes_.load(std::memory_order_relaxed);
    s.rebalances = rebalances_.load(std::memory_order_relaxed);
    s.queue_depth = consumer_queue_ != nullptr ? rd_kafka_queue_length(consumer_queue_) : 0;
    return s;
}

void Consumer::close() {
    if (closed_) return;
    closed_ = true;
    // Leaves the group; the revoke reaches on_revoke from inside this call.
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk_.get());
    hook_error_ = nullptr;
    if (group_watch_->joined.load(std::memory_order_acquire) && !group_watch_->assigned.load(std::memory_order_acquire) &&
        rd_kafka_version() < kFirstFixedAssignorStateVersion) {
        // Destroying this client would abort the process (kFirstFixedAssignorStateVersion): it
        // is left to the process's exit instead, once, with its threads idle after the close.
        logger("consumer")->warn("closed between joining the group and its first assignment: with librdkafka {} "
                                 "destroying the client would abort (librdkafka #4312), so it is kept until exit",
                                 rd_kafka_version_str());
        new std::shared_ptr<rd_kafka_t>(rk_);  // deliberately never freed
        rd_kafka_set_log_level(rk_.get(), 0);   // its reconnect attempts are nobody's concern
    }
    if (err) throw Error(IOTS_ERR_KAFKA, std::string("leaving the group failed: ") + rd_kafka_err2str(err));
}

}  // namespace iotstream
