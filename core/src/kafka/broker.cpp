// The embedded broker: librdkafka's mock cluster behind the C API.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "common/config.hpp"
#include "common/defaults.hpp"
#include "common/log.hpp"

struct iots_broker_s {
    rd_kafka_t *rk = nullptr;  // the mock cluster needs a client handle for its book-keeping
    rd_kafka_mock_cluster_t *cluster = nullptr;
    std::string bootstrap;
    int broker_count = 1;

    ~iots_broker_s() {
        if (cluster) rd_kafka_mock_cluster_destroy(cluster);
        if (rk) rd_kafka_destroy(rk);
    }
};

namespace iotstream {
namespace {

void check_mock(rd_kafka_resp_err_t err, const std::string &what) {
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        throw Error(IOTS_ERR_KAFKA, what + ": " + rd_kafka_err2str(err));
}

void check_broker_id(const iots_broker_s *broker, int broker_id) {
    if (broker_id < 1 || broker_id > broker->broker_count)
        throw Error(IOTS_ERR_INVALID_ARG, "broker id " + std::to_string(broker_id) +
                                              " is not in 1.." + std::to_string(broker->broker_count));
}

}  // namespace
}  // namespace iotstream

using namespace iotstream;

extern "C" {

IOTS_EXPORT iots_err_t iots_broker_new(const char *config_json, iots_broker_t **brokerp, char *errstr,
                                       size_t errstr_size) {
    return guard(errstr, errstr_size, [&] {
        require_arg(brokerp, "brokerp");
        *brokerp = nullptr;
        Json doc = parse_config(config_json, "broker config");
        ConfigReader config(doc, "broker config");
        auto broker = std::make_unique<iots_broker_s>();
        broker->broker_count = static_cast<int>(config.get_int("brokers", 1, 1, 16));
        Json topics = config.get_json("topics", Json());
        config.finish();

        char kerr[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        set_kafka_property(conf, "log_level", "3");  // the mock cluster's own chatter is noise
        broker->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof kerr);
        if (!broker->rk) {
            rd_kafka_conf_destroy(conf);
            throw Error(IOTS_ERR_KAFKA, std::string("cannot create broker client: ") + kerr);
        }
        broker->cluster = rd_kafka_mock_cluster_new(broker->rk, broker->broker_count);
        if (!broker->cluster) throw Error(IOTS_ERR_KAFKA, "cannot start the mock cluster");
        broker->bootstrap = rd_kafka_mock_cluster_bootstraps(broker->cluster);

        if (topics.is_null()) {
            for (const char *name : kDefaultTopics)
                check_mock(rd_kafka_mock_topic_create(broker->cluster, name, kDefaultPartitions, 1),
                           std::string("creating topic ") + name);
        } else {
            if (!topics.is_array()) throw Error(IOTS_ERR_CONFIG, "broker config: key 'topics' must be an array");
            for (const Json &topic : topics) {
                if (!topic.is_object() || !topic.contains("name") || !topic["name"].is_string())
                    throw Error(IOTS_ERR_CONFIG,
                                "broker config: each entry of 'topics' needs a string 'name', got " +
                                    topic.dump());
                ConfigReader entry(topic, "broker config topic");
                std::string name = entry.get_string("name", "");
                int partitions = static_cast<int>(entry.get_int("partitions", kDefaultPartitions, 1, 10000));
                entry.finish();
                check_mock(rd_kafka_mock_topic_create(broker->cluster, name.c_str(), partitions, 1),
                           "creating topic " + name);
            }
        }
        logger("broker")->info("embedded broker up: {} broker(s) at {}", broker->broker_count,
                               broker->bootstrap);
        *brokerp = broker.release();
    });
}

IOTS_EXPORT const char *iots_broker_bootstrap(const iots_broker_t *broker) {
    return broker ? broker->bootstrap.c_str() : "";
}

IOTS_EXPORT iots_err_t iots_broker_create_topic(iots_broker_t *broker, const char *topic, int partitions,
                                                char *errstr, size_t errstr_size) {
    return guard(errstr, errstr_size, [&] {
        require_arg(broker, "broker");
        require_arg(topic, "topic");
        if (partitions < 1) throw Error(IOTS_ERR_INVALID_ARG, "partitions must be >= 1");
        check_mock(rd_kafka_mock_topic_create(broker->cluster, topic, partitions, 1),
                   std::string("creating topic ") + topic);
    });
}

IOTS_EXPORT iots_err_t iots_broker_set_down(iots_broker_t *broker, int broker_id, int down) {
    return guard(nullptr, 0, [&] {
        require_arg(broker, "broker");
        check_broker_id(broker, broker_id);
        check_mock(down ? rd_kafka_mock_broker_set_down(broker->cluster, broker_id)
                        : rd_kafka_mock_broker_set_up(broker->cluster, broker_id),
                   "setting broker state");
    });
}

IOTS_EXPORT iots_err_t iots_broker_set_rtt(iots_broker_t *broker, int broker_id, int rtt_ms) {
    return guard(nullptr, 0, [&] {
        require_arg(broker, "broker");
        check_broker_id(broker, broker_id);
        check_mock(rd_kafka_mock_broker_set_rtt(broker->cluster, broker_id, rtt_ms), "setting rtt");
    });
}

IOTS_EXPORT iots_err_t iots_broker_push_request_errors(iots_broker_t *broker, int api_key, int count,
                                                       int kafka_error) {
    return guard(nullptr, 0, [&] {
        require_arg(broker, "broker");
        if (count < 1 || api_key < 0) throw Error(IOTS_ERR_INVALID_ARG, "count must be >= 1 and api_key >= 0");
        std::vector<rd_kafka_resp_err_t> errors(static_cast<size_t>(count),
                                                static_cast<rd_kafka_resp_err_t>(kafka_error));
        rd_kafka_mock_push_request_errors_array(broker->cluster, static_cast<int16_t>(api_key),
                                                errors.size(), errors.data());
    });
}

IOTS_EXPORT iots_err_t iots_broker_set_partition_leader(iots_broker_t *broker, const char *topic, int partition,
                                                        int broker_id) {
    return guard(nullptr, 0, [&] {
        require_arg(broker, "broker");
        require_arg(topic, "topic");
        if (partition < 0) throw Error(IOTS_ERR_INVALID_ARG, "partition must be >= 0");
        if (broker_id != -1) check_broker_id(broker, broker_id);
        check_mock(rd_kafka_mock_partition_set_leader(broker->cluster, topic, partition, broker_id),
                   "setting the leader of " + std::string(topic) + " [" + std::to_string(partition) + "]");
    });
}

IOTS_EXPORT iots_err_t iots_broker_set_coordinator(iots_broker_t *broker, const char *kind, const char *key,
                                                   int broker_id) {
    return guard(nullptr, 0, [&] {
        require_arg(broker, "broker");
        require_arg(kind, "kind");
        require_arg(key, "key");
        const std::string_view which(kind);
        if (which != "group" && which != "transaction")
            throw Error(IOTS_ERR_INVALID_ARG, "coordinator kind must be \"group\" or \"transaction\", not \"" +
                                                  std::string(which) + "\"");
        check_broker_id(broker, broker_id);
        check_mock(rd_kafka_mock_coordinator_set(broker->cluster, kind, key, broker_id),
                   "moving the " + std::string(which) + " coordinator of " + key);
    });
}

IOTS_EXPORT void iots_broker_destroy(iots_broker_t *broker) { delete broker; }

}  // extern "C"
