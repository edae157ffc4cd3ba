// The Consumer's group membership: the client and its configuration, the subscription, the
// rebalance callback (assign/revoke, the hooks), the watch on this member's JoinGroup requests
// that holds commits back while it rejoins (group_rebalancing()), and leaving the group, with
// the librdkafka #4312 workaround. Fetching is in consumer_poll.cpp, offsets in
// consumer_offsets.cpp.
#include "kafka/consumer.hpp"

#include <cstring>
#include <set>

#include "common/log.hpp"
#include "kafka/partition_list.hpp"
#include "kafka/producer.hpp"

namespace iotstream {

namespace {

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
    auto list = partition_list::make(topics.size());
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
    TopicPartitions parts = partition_list::to_pairs(partitions);
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

bool Consumer::assignment_lost() { return rd_kafka_assignment_lost(rk_.get()) != 0; }

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
