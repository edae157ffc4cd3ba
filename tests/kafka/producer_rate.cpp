// Measurement, not a test: producer throughput through iots_producer_send versus a bare
// rd_kafka_producev loop with the same settings, against the embedded broker.
//   kafka_producer_rate [records=1000000] [value_bytes=250]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <librdkafka/rdkafka.h>

#include "iotstream/iotstream.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void report(const char *what, size_t records, size_t value_bytes, double seconds) {
    std::printf("%-34s %8zu records in %6.3f s = %9.0f rec/s (%6.1f MB/s of values)\n", what, records, seconds,
                static_cast<double>(records) / seconds,
                static_cast<double>(records * value_bytes) / seconds / 1e6);
}

void run_iotstream(const std::string &bootstrap, size_t records, const std::string &value) {
    std::string config = R"({"topic": "rate", "kafka": {"bootstrap.servers": ")" + bootstrap + R"("}})";
    iots_producer_t *producer = nullptr;
    char errstr[512];
    if (iots_producer_new(config.c_str(), nullptr, nullptr, &producer, errstr, sizeof errstr) != IOTS_OK) {
        std::fprintf(stderr, "producer: %s\n", errstr);
        std::exit(1);
    }
    char key[32];
    auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < records; ++i) {
        int key_len = std::snprintf(key, sizeof key, "sensor-%zu", i % 100000);
        if (iots_producer_send(producer, nullptr, key, static_cast<size_t>(key_len), value.data(), value.size(),
                               nullptr, errstr, sizeof errstr) != IOTS_OK) {
            std::fprintf(stderr, "send: %s\n", errstr);
            std::exit(1);
        }
    }
    double enqueue = seconds_since(start);
    iots_producer_flush(producer, -1);
    double total = seconds_since(start);
    iots_producer_stats_t stats{};
    stats.struct_size = sizeof stats;
    iots_producer_get_stats(producer, &stats);
    report("iots_producer_send (enqueue)", records, value.size(), enqueue);
    report("iots_producer_send (delivered)", static_cast<size_t>(stats.delivered), value.size(), total);
    iots_producer_close(producer, 10000);
}

void run_reading(const std::string &bootstrap, size_t records) {
    std::string config = R"({"topic": "rate", "kafka": {"bootstrap.servers": ")" + bootstrap + R"("}})";
    iots_producer_t *producer = nullptr;
    char errstr[512];
    iots_producer_new(config.c_str(), nullptr, nullptr, &producer, errstr, sizeof errstr);
    char key[32];
    const char *data = R"({"temperature": 21.53, "humidity": 40.2, "pressure": 1013.25, "battery": 87})";
    auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < records; ++i) {
        std::snprintf(key, sizeof key, "sensor-%zu", i % 100000);
        if (iots_producer_send_reading(producer, nullptr, key, data, errstr, sizeof errstr) != IOTS_OK) {
            std::fprintf(stderr, "send_reading: %s\n", errstr);
            std::exit(1);
        }
    }
    iots_producer_flush(producer, -1);
    report("iots_producer_send_reading (delivered)", records, 170, seconds_since(start));
    iots_producer_close(producer, 10000);
}

void run_raw(const std::string &bootstrap, size_t records, const std::string &value) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    const char *settings[][2] = {{"bootstrap.servers", bootstrap.c_str()},
                                 {"linger.ms", "10"},
                                 {"compression.type", "snappy"},
                                 {"acks", "1"},
                                 {"retries", "3"},
                                 {"max.in.flight.requests.per.connection", "5"},
                                 {"queue.buffering.max.kbytes", "32768"},
                                 {"queue.buffering.max.messages", "1000000"},
                                 {"batch.size", "16384"},
                                 {"partitioner", "murmur2_random"}};
    for (auto &setting : settings) rd_kafka_conf_set(conf, setting[0], setting[1], errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, "rate", nullptr);
    char key[32];
    auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < records; ++i) {
        int key_len = std::snprintf(key, sizeof key, "sensor-%zu", i % 100000);
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_KEY(key, static_cast<size_t>(key_len)),
                RD_KAFKA_V_VALUE(const_cast<char *>(value.data()), value.size()), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
            rd_kafka_poll(rk, 10);
        }
        if (i % 1000 == 0) rd_kafka_poll(rk, 0);
    }
    double enqueue = seconds_since(start);
    rd_kafka_flush(rk, -1);
    report("rd_kafka_producev (enqueue)", records, value.size(), enqueue);
    report("rd_kafka_producev (delivered)", records, value.size(), seconds_since(start));
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
}

}  // namespace

int main(int argc, char **argv) {
    size_t records = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1000000;
    size_t value_bytes = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 250;
    iots_log_set_level(IOTS_LOG_WARN);
    iots_broker_t *broker = nullptr;
    char errstr[512];
    if (iots_broker_new(R"({"topics": [{"name": "rate", "partitions": 8}]})", &broker, errstr, sizeof errstr) !=
        IOTS_OK) {
        std::fprintf(stderr, "broker: %s\n", errstr);
        return 1;
    }
    std::string bootstrap = iots_broker_bootstrap(broker);
    std::string value(value_bytes, 'x');
    for (size_t i = 0; i < value.size(); ++i) value[i] = "0123456789abcdef{}\":,"[(i * 7) % 21];
    run_raw(bootstrap, records, value);
    run_iotstream(bootstrap, records, value);
    run_raw(bootstrap, records, value);
    run_iotstream(bootstrap, records, value);
    run_reading(bootstrap, records);
    iots_broker_destroy(broker);
    return 0;
}
