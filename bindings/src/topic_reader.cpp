// read_topics(): everything some topics hold now, read in C++ straight into columns.
//
// For results (Pipeline.results(), windows(), ...): a librdkafka consumer that assigns itself
// every partition from its first offset (no group join, no commits) and reads until each
// partition reports its end (enable.partition.eof: the end offset the broker gave in a fetch
// response, the last stable offset under read_committed, so transaction markers do not count).
// No wait for silence: it returns as soon as the last partition is read to its end. Each value
// is decoded into JsonColumns as it arrives, without the GIL.
#include <librdkafka/rdkafka.h>
#include <pybind11/stl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "json_columns.hpp"
#include "native.hpp"

namespace iotstream_native {
namespace {

std::atomic<uint64_t> reader_count{0};

struct TopicReader {
    rd_kafka_t *rk = nullptr;
    std::vector<std::string> topics;
    std::vector<JsonColumns> columns;  // one per topic
    std::map<std::string, size_t> topic_index;
    std::set<std::pair<size_t, int32_t>> open;  // (topic, partition) not yet read to the end
    std::string last_error;

    ~TopicReader() {
        if (!rk) return;
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }

    void create(const std::string &kafka_json) {
        nlohmann::json props = nlohmann::json::parse(kafka_json);
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[512] = "";
        auto put = [&](const std::string &name, const std::string &value) {
            if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
                rd_kafka_conf_destroy(conf);
                throw NativeError(IOTS_ERR_CONFIG, "reading topics: kafka property '" + name + "': " + errstr);
            }
        };
        for (const auto &[name, value] : props.items())
            put(name, value.is_string() ? value.get<std::string>() : value.dump());
        // A group id only because assign() needs one: the reader never joins it nor commits.
        put("group.id", "iotstream-reader-" + std::to_string(getpid()) + "-" + std::to_string(++reader_count));
        put("enable.auto.commit", "false");
        put("enable.auto.offset.store", "false");
        put("enable.partition.eof", "true");
        put("fetch.wait.max.ms", "20");  // a partition at its end answers soon (its EOF comes from the reply)
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
        if (!rk) {
            rd_kafka_conf_destroy(conf);
            throw NativeError(IOTS_ERR_KAFKA, std::string("reading topics: ") + errstr);
        }
    }

    // Every partition of every topic from its beginning; a topic that does not exist is empty.
    void assign(int timeout_ms) {
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
        std::unique_ptr<rd_kafka_topic_partition_list_t, void (*)(rd_kafka_topic_partition_list_t *)> owned(
            list, rd_kafka_topic_partition_list_destroy);
        for (size_t t = 0; t < topics.size(); ++t) {
            rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topics[t].c_str(), nullptr);
            const rd_kafka_metadata_t *md = nullptr;
            rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, std::max(timeout_ms, 1));
            rd_kafka_topic_destroy(rkt);
            if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
                throw NativeError(err == RD_KAFKA_RESP_ERR__TIMED_OUT ? IOTS_ERR_TIMED_OUT : IOTS_ERR_KAFKA,
                                  "reading topic '" + topics[t] + "': metadata: " + rd_kafka_err2str(err));
            std::unique_ptr<const rd_kafka_metadata_t, void (*)(const rd_kafka_metadata_t *)> md_owned(
                md, rd_kafka_metadata_destroy);
            for (int i = 0; i < md->topic_cnt; ++i) {
                const rd_kafka_metadata_topic_t &topic = md->topics[i];
                if (topics[t] != topic.topic) continue;
                if (topic.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) break;
                if (topic.err != RD_KAFKA_RESP_ERR_NO_ERROR)
                    throw NativeError(IOTS_ERR_KAFKA, "reading topic '" + topics[t] + "': " + rd_kafka_err2str(topic.err));
                for (int p = 0; p < topic.partition_cnt; ++p) {
                    rd_kafka_topic_partition_list_add(list, topics[t].c_str(), topic.partitions[p].id)->offset =
                        RD_KAFKA_OFFSET_BEGINNING;
                    open.emplace(t, topic.partitions[p].id);
                }
            }
        }
        if (list->cnt == 0) return;
        rd_kafka_resp_err_t err = rd_kafka_assign(rk, list);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            throw NativeError(IOTS_ERR_KAFKA, std::string("reading topics: assign: ") + rd_kafka_err2str(err));
    }

    // Polls for up to slice_ms; true once every partition was read to its end.
    bool poll(int slice_ms) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(slice_ms);
        while (!open.empty()) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, static_cast<int>(std::max<int64_t>(left.count(), 0)));
            if (!m) {
                if (left.count() <= 0) break;
                continue;
            }
            std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t *)> owned(m, rd_kafka_message_destroy);
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                open.erase({index_of(m), m->partition});
            } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                last_error = rd_kafka_message_errstr(m);  // transient (librdkafka retries); fatal ones end in a timeout
            } else {
                columns[index_of(m)].add(
                    std::string_view(static_cast<const char *>(m->payload), m->payload ? m->len : 0));
            }
        }
        return open.empty();
    }

    size_t index_of(const rd_kafka_message_t *m) const {
        auto it = m->rkt ? topic_index.find(rd_kafka_topic_name(m->rkt)) : topic_index.end();
        if (it == topic_index.end()) throw NativeError(IOTS_ERR_INTERNAL, "reading topics: a record of a topic not asked for");
        return it->second;
    }
};

// {topic: [(column, values), ...]} for every topic in `topics`; kafka_json: librdkafka properties.
py::dict read_topics(const std::string &kafka_json, const std::vector<std::string> &topics, int timeout_ms) {
    TopicReader reader;
    reader.topics = topics;
    reader.columns.resize(topics.size());
    for (size_t t = 0; t < topics.size(); ++t) reader.topic_index.emplace(topics[t], t);
    without_gil([&] {
        reader.create(kafka_json);
        reader.assign(timeout_ms < 0 ? 60000 : timeout_ms);
    });
    const bool done = in_slices(timeout_ms, [&](int slice_ms) { return without_gil([&] { return reader.poll(slice_ms); }); });
    if (!done) {
        std::string message = "reading topics: " + std::to_string(reader.open.size()) +
                              " partition(s) not read to their end within " + std::to_string(timeout_ms) + " ms";
        if (!reader.last_error.empty()) message += " (last error: " + reader.last_error + ")";
        throw NativeError(IOTS_ERR_TIMED_OUT, message);
    }
    without_gil([&] {
        rd_kafka_consumer_close(reader.rk);
        rd_kafka_destroy(reader.rk);
        reader.rk = nullptr;
    });
    py::dict out;
    for (size_t t = 0; t < topics.size(); ++t) out[py::str(topics[t])] = reader.columns[t].to_python();
    return out;
}

}  // namespace

void bind_topic_reader(py::module_ &m) {
    m.def("read_topics", &read_topics, py::arg("kafka_json"), py::arg("topics"), py::arg("timeout_ms"),
          "{topic: [(column, values), ...]}: every record the topics hold now, from their first offset to "
          "their end, decoded into columns (no consumer group join). TimedOutError if a partition is not "
          "read to its end within timeout_ms.");
}

}  // namespace iotstream_native
