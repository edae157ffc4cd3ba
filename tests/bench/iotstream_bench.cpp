// iotstream-bench: the C++ side of scripts/bench.sh. Each command runs one measured path against
// a running broker and prints one JSON object (its result) as the last line of stdout; the
// Python driver (tests/bench/run_bench.py) starts the broker, feeds every path the same data
// file and turns the results into a table. Run with --help for the commands.
//
// Paths that measure iotstream use only its public C API (linked, not dlopen()ed); the raw
// librdkafka paths are the ceilings, configured exactly like iotstream's clients.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <nlohmann/json.hpp>

#include "iotstream/iotstream.h"

namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

const char *kUsage = R"(Usage: iotstream-bench COMMAND [options]

Commands (each prints one JSON result line last):
  produce         send --count records from --data with --mode:
                    send     iots_producer_send of pre-built envelopes (default)
                    batch    iots_producer_send_batch of (sensor_id, data) readings: the
                             library builds each envelope (timestamp, UUID, JSON check)
                    rdkafka  raw rd_kafka_producev loop (the ceiling), same settings
  loadgen         iotstream's load generator, unpaced unless --rate, --count readings
  consume-rdkafka raw librdkafka consumer over every partition of --topic from the start
                  until --count records (the pipeline's ceiling)
  pipeline        iots_pipeline_run_bounded over --topic; checks consumed == --count;
                  reports CPU microseconds per record (getrusage: the whole process)
  latency         pipeline (consumer group) + load generator at --rate for --duration;
                  measures produce time -> alert consumed on the alerts topic
  memory          pipeline over --topic (windows never close); RSS once --count records
                  are consumed

Options:
  --bootstrap HOST:PORT   broker (required)
  --topic NAME            input / target topic (required except latency)
  --data FILE             records, one per line: sensor_id TAB data_json TAB envelope
  --count N               records to send, or expected in the topic
  --mode M                produce mode (send, batch, rdkafka)
  --kafka KEY=VALUE       extra librdkafka property for the measured client (repeatable)
  --consumer-kafka K=V    librdkafka property for the pipeline's input consumer only
  --producer-kafka K=V    librdkafka property for the pipeline's output producer only
  --rate R                msgs/s (loadgen, latency)
  --duration S            seconds (latency)
  --sensors N             distinct sensors for loadgen/latency (default 100000)
  --prefix P              output topics are P-windows, P-aggregates, P-alerts, P-dlq
  --group ID              consumer group id (default: unique per run)
  --aggregate-interval-ms N  the aggregate stage's emission interval (default: its own)
  --guarantee G           pipeline processing.guarantee: at_least_once (default) or exactly_once
  --timeout S             give up after S seconds (default 300)
)";

[[noreturn]] void die(const std::string &message) {
    std::fprintf(stderr, "iotstream-bench: %s\n", message.c_str());
    std::exit(2);
}

struct Options {
    std::string command;
    std::string bootstrap;
    std::string topic;
    std::string data;
    uint64_t count = 0;
    std::string mode = "send";
    std::vector<std::pair<std::string, std::string>> kafka;
    std::vector<std::pair<std::string, std::string>> consumer_kafka;  // the pipeline's consumer only
    std::vector<std::pair<std::string, std::string>> producer_kafka;  // the pipeline's output producer only
    double rate = 0;
    double duration_s = 10;
    uint64_t sensors = 100000;
    std::string prefix = "bench";
    std::string group;
    double timeout_s = 300;
    int64_t aggregate_interval_ms = 0;  // 0: the aggregate plugin's default
    std::string guarantee;  // "": the pipeline's default (at_least_once)
};

double parse_number(const std::string &flag, const std::string &text) {
    char *end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(value) || value < 0)
        die(flag + " needs a number >= 0, got '" + text + "'");
    return value;
}

Options parse_options(int argc, char **argv) {
    if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
        std::fputs(kUsage, argc < 2 ? stderr : stdout);
        std::exit(argc < 2 ? 2 : 0);
    }
    Options o;
    o.command = argv[1];
    for (int i = 2; i < argc; ++i) {
        std::string flag = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) die(flag + " needs a value (see --help)");
            return argv[++i];
        };
        if (flag == "--bootstrap") o.bootstrap = value();
        else if (flag == "--topic") o.topic = value();
        else if (flag == "--data") o.data = value();
        else if (flag == "--count") o.count = static_cast<uint64_t>(parse_number(flag, value()));
        else if (flag == "--mode") o.mode = value();
        else if (flag == "--kafka") {
            std::string kv = value();
            size_t eq = kv.find('=');
            if (eq == std::string::npos || eq == 0) die("--kafka needs KEY=VALUE, got '" + kv + "'");
            o.kafka.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
        } else if (flag == "--consumer-kafka") {
            std::string kv = value();
            size_t eq = kv.find('=');
            if (eq == std::string::npos || eq == 0) die("--consumer-kafka needs KEY=VALUE, got '" + kv + "'");
            o.consumer_kafka.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
        } else if (flag == "--producer-kafka") {
            std::string kv = value();
            size_t eq = kv.find('=');
            if (eq == std::string::npos || eq == 0) die("--producer-kafka needs KEY=VALUE, got '" + kv + "'");
            o.producer_kafka.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
        } else if (flag == "--rate") o.rate = parse_number(flag, value());
        else if (flag == "--duration") o.duration_s = parse_number(flag, value());
        else if (flag == "--sensors") o.sensors = static_cast<uint64_t>(parse_number(flag, value()));
        else if (flag == "--prefix") o.prefix = value();
        else if (flag == "--group") o.group = value();
        else if (flag == "--aggregate-interval-ms")
            o.aggregate_interval_ms = static_cast<int64_t>(parse_number(flag, value()));
        else if (flag == "--timeout") o.timeout_s = parse_number(flag, value());
        else if (flag == "--guarantee") o.guarantee = value();
        else die("unknown option '" + flag + "' (see --help)");
    }
    if (o.bootstrap.empty()) die("--bootstrap is required");
    if (o.group.empty()) o.group = "bench-" + o.command + "-" + std::to_string(::getpid());
    return o;
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Resident set size of this process, from /proc/self/statm (pages).
uint64_t resident_bytes() {
    std::ifstream statm("/proc/self/statm");
    uint64_t size_pages = 0, resident_pages = 0;
    statm >> size_pages >> resident_pages;
    return resident_pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

// Bytes malloc() has handed out and not taken back (glibc): live heap, without the freed
// memory the allocator keeps resident. Separates real state from fetch-buffer leftovers.
uint64_t heap_in_use() {
    struct mallinfo2 info = mallinfo2();
    return static_cast<uint64_t>(info.uordblks + info.hblkhd);
}

// User + system CPU seconds of this whole process (every librdkafka thread included).
double cpu_seconds() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval &t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

void emit_result(const Json &result) { std::printf("%s\n", result.dump().c_str()); }

void check(iots_err_t err, const char *errstr, const std::string &what) {
    if (err != IOTS_OK) die(what + ": " + (errstr && *errstr ? errstr : iots_err_str(err)));
}

// ---- the shared data file -------------------------------------------------------------------

struct Record {
    std::string sensor_id;
    std::string data_json;
    std::string envelope;
};

std::vector<Record> load_records(const std::string &path) {
    if (path.empty()) die("--data FILE is required for this command");
    std::ifstream in(path);
    if (!in) die("cannot read --data " + path);
    std::vector<Record> records;
    std::string line;
    size_t line_number = 0;
    while (std::getline(in, line)) {
        ++line_number;
        size_t first = line.find('\t');
        size_t second = first == std::string::npos ? first : line.find('\t', first + 1);
        if (second == std::string::npos)
            die(path + ":" + std::to_string(line_number) + ": expected sensor_id TAB data_json TAB envelope");
        records.push_back({line.substr(0, first), line.substr(first + 1, second - first - 1), line.substr(second + 1)});
    }
    if (records.empty()) die(path + " holds no records");
    return records;
}

Json kafka_overrides(const Options &o) {
    Json kafka = Json::object();
    for (const auto &[key, value] : o.kafka) kafka[key] = value;
    kafka["bootstrap.servers"] = o.bootstrap;
    return kafka;
}

// ---- produce --------------------------------------------------------------------------------

struct DeliveryCounts {
    std::atomic<uint64_t> delivered{0};
    std::atomic<uint64_t> failed{0};
};

void on_iots_delivery(void *opaque, const iots_delivery_report_t *report) {
    auto *counts = static_cast<DeliveryCounts *>(opaque);
    (report->err == IOTS_OK ? counts->delivered : counts->failed).fetch_add(1, std::memory_order_relaxed);
}

Json produce_iotstream(const Options &o, const std::vector<Record> &records) {
    char errstr[512];
    DeliveryCounts counts;
    Json config = {{"topic", o.topic}, {"kafka", kafka_overrides(o)}};
    iots_producer_t *producer = nullptr;
    check(iots_producer_new(config.dump().c_str(), on_iots_delivery, &counts, &producer, errstr, sizeof errstr),
          errstr, "iots_producer_new");

    // Readings for the batch mode are views into the records; built before the clock starts.
    constexpr size_t kBatch = 1000;
    std::vector<iots_reading_t> readings;
    if (o.mode == "batch") {
        readings.reserve(records.size());
        for (const Record &r : records) readings.push_back({r.sensor_id.c_str(), r.data_json.c_str()});
    }

    uint64_t bytes = 0;
    auto start = Clock::now();
    const double cpu_start = cpu_seconds();
    if (o.mode == "send") {
        for (uint64_t i = 0; i < o.count; ++i) {
            const Record &r = records[i % records.size()];
            check(iots_producer_send(producer, nullptr, r.sensor_id.data(), r.sensor_id.size(), r.envelope.data(),
                                     r.envelope.size(), nullptr, errstr, sizeof errstr),
                  errstr, "iots_producer_send");
            bytes += r.envelope.size();
        }
    } else {
        uint64_t sent = 0;
        while (sent < o.count) {
            size_t from = static_cast<size_t>(sent % records.size());
            size_t n = static_cast<size_t>(std::min<uint64_t>({kBatch, o.count - sent, records.size() - from}));
            check(iots_producer_send_batch(producer, nullptr, readings.data() + from, n, nullptr, nullptr, errstr,
                                           sizeof errstr),
                  errstr, "iots_producer_send_batch");
            for (size_t i = from; i < from + n; ++i) bytes += records[i].envelope.size();  // approximate: same shape
            sent += n;
        }
    }
    double enqueue_s = seconds_since(start);
    check(iots_producer_flush(producer, static_cast<int>(o.timeout_s * 1000)), nullptr, "iots_producer_flush");
    double elapsed = seconds_since(start);
    const double cpu = cpu_seconds() - cpu_start;
    iots_producer_close(producer, 10000);
    return {{"records", o.count},     {"bytes", bytes},
            {"elapsed_s", elapsed},   {"enqueue_s", enqueue_s},  {"cpu_s", cpu},
            {"delivered", counts.delivered.load()}, {"failed", counts.failed.load()}};
}

void on_rdkafka_delivery(rd_kafka_t *, const rd_kafka_message_t *message, void *opaque) {
    auto *counts = static_cast<DeliveryCounts *>(opaque);
    (message->err ? counts->failed : counts->delivered).fetch_add(1, std::memory_order_relaxed);
}

// iotstream's producer defaults (the seed's settings), so the ceiling is measured like for like.
rd_kafka_conf_t *rdkafka_conf(const std::vector<std::pair<std::string, std::string>> &properties) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    for (const auto &[key, value] : properties)
        if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
            die("librdkafka property " + key + "=" + value + ": " + errstr);
    return conf;
}

Json produce_rdkafka(const Options &o, const std::vector<Record> &records) {
    std::vector<std::pair<std::string, std::string>> properties = {
        {"bootstrap.servers", o.bootstrap},
        {"linger.ms", "10"},
        {"compression.type", "snappy"},
        {"acks", "1"},
        {"retries", "3"},
        {"max.in.flight.requests.per.connection", "5"},
        {"queue.buffering.max.kbytes", "32768"},
        {"queue.buffering.max.messages", "1000000"},
        {"batch.size", "16384"},
        {"partitioner", "murmur2_random"}};
    for (const auto &kv : o.kafka) properties.push_back(kv);
    DeliveryCounts counts;
    rd_kafka_conf_t *conf = rdkafka_conf(properties);
    rd_kafka_conf_set_dr_msg_cb(conf, on_rdkafka_delivery);
    rd_kafka_conf_set_opaque(conf, &counts);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) die(std::string("rd_kafka_new: ") + errstr);
    // Delivery reports are served on a thread of their own, as iotstream's producer does.
    std::atomic<bool> done{false};
    std::thread poller([&] {
        while (!done.load(std::memory_order_relaxed)) rd_kafka_poll(rk, 100);
    });

    uint64_t bytes = 0;
    auto start = Clock::now();
    const double cpu_start = cpu_seconds();
    for (uint64_t i = 0; i < o.count; ++i) {
        const Record &r = records[i % records.size()];
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(o.topic.c_str()), RD_KAFKA_V_KEY(r.sensor_id.data(), r.sensor_id.size()),
                RD_KAFKA_V_VALUE(const_cast<char *>(r.envelope.data()), r.envelope.size()),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (!err) break;
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) die(std::string("rd_kafka_producev: ") + rd_kafka_err2str(err));
            std::this_thread::sleep_for(std::chrono::microseconds(200));  // the poller drains reports
        }
        bytes += r.envelope.size();
    }
    double enqueue_s = seconds_since(start);
    rd_kafka_resp_err_t flushed = rd_kafka_flush(rk, static_cast<int>(o.timeout_s * 1000));
    double elapsed = seconds_since(start);
    const double cpu = cpu_seconds() - cpu_start;
    done = true;
    poller.join();
    rd_kafka_destroy(rk);
    if (flushed) die(std::string("rd_kafka_flush: ") + rd_kafka_err2str(flushed));
    return {{"records", o.count},     {"bytes", bytes},
            {"elapsed_s", elapsed},   {"enqueue_s", enqueue_s},  {"cpu_s", cpu},
            {"delivered", counts.delivered.load()}, {"failed", counts.failed.load()}};
}

Json command_produce(const Options &o) {
    if (o.topic.empty() || o.count == 0) die("produce needs --topic and --count");
    std::vector<Record> records = load_records(o.data);
    if (o.mode == "rdkafka") return produce_rdkafka(o, records);
    if (o.mode == "send" || o.mode == "batch") return produce_iotstream(o, records);
    die("--mode must be send, batch or rdkafka, got '" + o.mode + "'");
}

Json loadgen_config(const Options &o, uint64_t count, double duration_s) {
    Json producer = {{"kafka", kafka_overrides(o)}};
    Json c = {{"rate", o.rate}, {"sensors", o.sensors}, {"topic", o.topic}, {"producer", producer}};
    if (count > 0) c["count"] = count;
    if (duration_s > 0) c["duration_s"] = duration_s;
    return c;
}

Json command_loadgen(const Options &o) {
    if (o.topic.empty() || o.count == 0) die("loadgen needs --topic and --count");
    char errstr[512];
    iots_loadgen_t *gen = nullptr;
    check(iots_loadgen_new(loadgen_config(o, o.count, 0).dump().c_str(), &gen, errstr, sizeof errstr), errstr,
          "iots_loadgen_new");
    auto start = Clock::now();
    const double cpu_start = cpu_seconds();
    check(iots_loadgen_start(gen, errstr, sizeof errstr), errstr, "iots_loadgen_start");
    check(iots_loadgen_wait(gen, static_cast<int>(o.timeout_s * 1000)), nullptr, "iots_loadgen_wait");
    iots_loadgen_stats_t s{};
    s.struct_size = sizeof s;
    // Delivered, not merely queued: wait for the acknowledgements the way the produce paths flush.
    while (iots_loadgen_get_stats(gen, &s) == IOTS_OK && s.delivered + s.failed < s.sent &&
           seconds_since(start) < o.timeout_s)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    double elapsed = seconds_since(start);
    const double cpu = cpu_seconds() - cpu_start;
    iots_loadgen_destroy(gen);
    // The generator's readings have the same shape as the data file's (the envelope is ~250 B);
    // the driver fills in bytes from the file's mean envelope size.
    return {{"records", s.sent}, {"elapsed_s", elapsed}, {"cpu_s", cpu}, {"delivered", s.delivered}, {"failed", s.failed},
            {"anomalous", s.anomalous}};
}

// ---- raw consume (the ceiling) -------------------------------------------------------------

std::vector<int32_t> partitions_of(rd_kafka_t *rk, const std::string &topic) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
    const rd_kafka_metadata_t *metadata = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &metadata, 10000);
    rd_kafka_topic_destroy(rkt);
    if (err) die("metadata of " + topic + ": " + rd_kafka_err2str(err));
    std::vector<int32_t> ids;
    for (int p = 0; p < metadata->topics[0].partition_cnt; ++p) ids.push_back(metadata->topics[0].partitions[p].id);
    rd_kafka_resp_err_t topic_err = metadata->topics[0].err;
    rd_kafka_metadata_destroy(metadata);
    if (topic_err) die("topic " + topic + ": " + rd_kafka_err2str(topic_err));
    return ids;
}

Json command_consume_rdkafka(const Options &o) {
    if (o.topic.empty() || o.count == 0) die("consume-rdkafka needs --topic and --count");
    // iotstream's consumer defaults: prefetch raised, no auto commit.
    std::vector<std::pair<std::string, std::string>> properties = {
        {"bootstrap.servers", o.bootstrap}, {"group.id", o.group},
        {"enable.auto.commit", "false"},    {"queued.min.messages", "200000"},
        {"queued.max.messages.kbytes", "262144"}};
    for (const auto &kv : o.kafka) properties.push_back(kv);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, rdkafka_conf(properties), errstr, sizeof errstr);
    if (!rk) die(std::string("rd_kafka_new: ") + errstr);
    rd_kafka_poll_set_consumer(rk);
    std::vector<int32_t> ids = partitions_of(rk, o.topic);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(static_cast<int>(ids.size()));
    for (int32_t id : ids) rd_kafka_topic_partition_list_add(list, o.topic.c_str(), id)->offset = RD_KAFKA_OFFSET_BEGINNING;

    uint64_t records = 0, bytes = 0, checksum = 0;
    auto start = Clock::now();
    const double cpu_start = cpu_seconds();
    if (rd_kafka_resp_err_t err = rd_kafka_assign(rk, list)) die(std::string("rd_kafka_assign: ") + rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_queue_t *queue = rd_kafka_queue_get_consumer(rk);
    std::vector<rd_kafka_message_t *> messages(10000);
    auto last_progress = Clock::now();
    while (records < o.count) {
        ssize_t n = rd_kafka_consume_batch_queue(queue, 100, messages.data(), messages.size());
        if (n < 0) die("rd_kafka_consume_batch_queue failed");
        if (n > 0) last_progress = Clock::now();
        for (ssize_t i = 0; i < n; ++i) {
            rd_kafka_message_t *m = messages[static_cast<size_t>(i)];
            if (!m->err) {
                ++records;
                bytes += m->len;
                if (m->len) checksum += static_cast<const unsigned char *>(m->payload)[m->len - 1];  // touch it
            }
            rd_kafka_message_destroy(m);
        }
        if (seconds_since(last_progress) > 10) break;  // the rest is gone (dropped by the mock broker)
    }
    double elapsed = seconds_since(start);
    const double cpu = cpu_seconds() - cpu_start;
    rd_kafka_queue_destroy(queue);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return {{"records", records}, {"bytes", bytes}, {"elapsed_s", elapsed}, {"cpu_s", cpu},
            {"cpu_us_per_record", records ? cpu * 1e6 / static_cast<double>(records) : 0.0},
            {"expected", o.count}, {"checksum", checksum}};
}

// ---- pipeline -------------------------------------------------------------------------------

Json pipeline_config(const Options &o, const Json &window_config) {
    Json outputs = {{"windows", o.prefix + "-windows"},
                    {"aggregates", o.prefix + "-aggregates"},
                    {"alerts", o.prefix + "-alerts"},
                    {"dlq", o.prefix + "-dlq"}};
    Json c = {{"kafka", kafka_overrides(o)},
              {"input", {{"topics", {o.topic}}, {"group_id", o.group}}},
              {"stages", {{{"plugin", "anomaly"}}, {{"plugin", "aggregate"}}, {{"plugin", "window"}, {"config", window_config}}}},
              {"outputs", outputs},
              {"plugins", {{"watch", false}}}};
    for (const auto &[key, value] : o.consumer_kafka) c["consumer"]["kafka"][key] = value;
    for (const auto &[key, value] : o.producer_kafka) c["producer"]["kafka"][key] = value;
    if (o.aggregate_interval_ms > 0) c["stages"][1]["config"]["interval_ms"] = o.aggregate_interval_ms;
    if (!o.guarantee.empty()) c["processing"]["guarantee"] = o.guarantee;
    return c;
}

Json pipeline_stats(iots_pipeline_t *pipeline) {
    std::string buf(16384, '\0');
    size_t needed = 0;
    iots_err_t err = iots_pipeline_stats_json(pipeline, buf.data(), buf.size(), &needed);
    if (err == IOTS_ERR_BUFFER_TOO_SMALL) {
        buf.resize(needed);
        err = iots_pipeline_stats_json(pipeline, buf.data(), buf.size(), &needed);
    }
    check(err, nullptr, "iots_pipeline_stats_json");
    return Json::parse(buf.c_str());
}

Json command_pipeline(const Options &o) {
    if (o.topic.empty() || o.count == 0) die("pipeline needs --topic and --count (the records the topic holds)");
    char errstr[1024];
    iots_pipeline_t *pipeline = nullptr;
    check(iots_pipeline_new(pipeline_config(o, Json::object()).dump().c_str(), &pipeline, errstr, sizeof errstr),
          errstr, "iots_pipeline_new");
    auto start = Clock::now();
    double cpu_start = cpu_seconds();
    check(iots_pipeline_run_bounded(pipeline, static_cast<int>(o.timeout_s * 1000), errstr, sizeof errstr), errstr,
          "iots_pipeline_run_bounded");
    double elapsed = seconds_since(start);
    double cpu = cpu_seconds() - cpu_start;
    Json s = pipeline_stats(pipeline);
    iots_pipeline_destroy(pipeline);
    uint64_t records = s["consumed"].get<uint64_t>();
    return {{"records", records}, {"bytes", s["bytes_consumed"]}, {"elapsed_s", elapsed},
            {"cpu_s", cpu}, {"cpu_us_per_record", records ? cpu * 1e6 / static_cast<double>(records) : 0.0},
            {"expected", o.count}, {"stats", s}};
}

// ---- latency --------------------------------------------------------------------------------

// Reads `"KEY":<digits>` out of an alert (the pipeline writes event_time_ms and
// detected_at_ms unescaped).
bool millis_of(std::string_view alert, std::string_view key, int64_t &ms) {
    const std::string quoted = "\"" + std::string(key) + "\":";
    size_t at = alert.find(quoted);
    if (at == std::string_view::npos) return false;
    ms = 0;
    bool any = false;
    for (size_t i = at + quoted.size(); i < alert.size() && alert[i] >= '0' && alert[i] <= '9'; ++i) {
        ms = ms * 10 + (alert[i] - '0');
        any = true;
    }
    return any;
}

double percentile(std::vector<int64_t> &sorted, double p) {
    if (sorted.empty()) return NAN;
    size_t index = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size()))) ;
    return static_cast<double>(sorted[std::min(sorted.size() - 1, index == 0 ? 0 : index - 1)]);
}

Json command_latency(const Options &o) {
    if (o.topic.empty() || o.rate <= 0) die("latency needs --topic and --rate");
    char errstr[1024];
    // Windows stay open (no window output burst in the middle of the measurement).
    iots_pipeline_t *pipeline = nullptr;
    check(iots_pipeline_new(pipeline_config(o, Json::object()).dump().c_str(), &pipeline, errstr, sizeof errstr),
          errstr, "iots_pipeline_new");
    check(iots_pipeline_start(pipeline, errstr, sizeof errstr), errstr, "iots_pipeline_start");

    // The alerts reader: a raw consumer at the end of the (fresh) alerts topic, fetching eagerly.
    const std::string alerts_topic = o.prefix + "-alerts";
    std::vector<std::pair<std::string, std::string>> properties = {
        {"bootstrap.servers", o.bootstrap}, {"group.id", o.group + "-alerts"},
        {"enable.auto.commit", "false"},    {"fetch.wait.max.ms", "5"}};
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, rdkafka_conf(properties), errstr, sizeof errstr);
    if (!rk) die(std::string("rd_kafka_new: ") + errstr);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    for (int32_t id : partitions_of(rk, alerts_topic))
        rd_kafka_topic_partition_list_add(list, alerts_topic.c_str(), id)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);

    // Wait until the pipeline owns its partitions, so the group join is not measured.
    auto join_start = Clock::now();
    while (pipeline_stats(pipeline).value("rebalances", 0) == 0) {
        if (seconds_since(join_start) > 30) die("the pipeline did not join its group within 30 s");
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }

    iots_loadgen_t *gen = nullptr;
    check(iots_loadgen_new(loadgen_config(o, 0, o.duration_s).dump().c_str(), &gen, errstr, sizeof errstr), errstr,
          "iots_loadgen_new");
    const int64_t started_ms = wall_ms();
    const int64_t warmup_ms = 1000;  // connections and first batches settle
    check(iots_loadgen_start(gen, errstr, sizeof errstr), errstr, "iots_loadgen_start");

    std::vector<int64_t> latencies;
    // The hops of each alert's way, from what the alert and its Kafka record carry:
    //   detect: the reading's envelope time (loadgen, at produce) -> detected_at_ms (the pipeline's
    //           clock when the rule fired): input producer linger + produce + fetch + decode + rules
    //   send:   detected_at_ms -> the alert record's CreateTime (output producer's producev)
    //   output: CreateTime -> consumed here: output producer linger + produce + this reader's fetch
    std::vector<int64_t> hop_detect, hop_send, hop_output;
    uint64_t alerts = 0, unparsed = 0;
    const int64_t stop_at_ms = started_ms + static_cast<int64_t>(o.duration_s * 1000) + 2000;
    while (wall_ms() < stop_at_ms) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);
        if (!m) continue;
        int64_t received_ms = wall_ms();
        if (!m->err) {
            ++alerts;
            int64_t event_ms = 0, detected_ms = 0;
            const std::string_view alert(static_cast<const char *>(m->payload), m->len);
            if (!millis_of(alert, "event_time_ms", event_ms)) {
                ++unparsed;
            } else if (event_ms >= started_ms + warmup_ms) {
                latencies.push_back(received_ms - event_ms);
                rd_kafka_timestamp_type_t type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
                const int64_t created_ms = rd_kafka_message_timestamp(m, &type);
                if (millis_of(alert, "detected_at_ms", detected_ms) && type == RD_KAFKA_TIMESTAMP_CREATE_TIME) {
                    hop_detect.push_back(detected_ms - event_ms);
                    hop_send.push_back(created_ms - detected_ms);
                    hop_output.push_back(received_ms - created_ms);
                }
            }
        }
        rd_kafka_message_destroy(m);
    }
    iots_loadgen_stats_t gs{};
    gs.struct_size = sizeof gs;
    iots_loadgen_get_stats(gen, &gs);
    Json ps = pipeline_stats(pipeline);
    iots_loadgen_destroy(gen);
    iots_pipeline_stop(pipeline, 0, 30000, errstr, sizeof errstr);
    iots_pipeline_destroy(pipeline);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);

    std::sort(latencies.begin(), latencies.end());
    Json hops = Json::object();
    for (auto [name, values] : {std::pair{"detect", &hop_detect}, {"send", &hop_send}, {"output", &hop_output}}) {
        std::sort(values->begin(), values->end());
        hops[name] = {{"p50_ms", percentile(*values, 50)}, {"p90_ms", percentile(*values, 90)},
                      {"p99_ms", percentile(*values, 99)}, {"count", values->size()}};
    }
    return {{"hops", hops},
            {"stages", ps.value("stages", Json::object())},
            {"rate_target", o.rate},
            {"rate_achieved", gs.achieved_rate},
            {"produced", gs.sent},
            {"consumed", ps["consumed"]},
            {"alerts", alerts},
            {"alerts_measured", latencies.size()},
            {"unparsed", unparsed},
            {"p50_ms", percentile(latencies, 50)},
            {"p90_ms", percentile(latencies, 90)},
            {"p99_ms", percentile(latencies, 99)},
            {"max_ms", latencies.empty() ? NAN : static_cast<double>(latencies.back())}};
}

// ---- memory ---------------------------------------------------------------------------------

Json command_memory(const Options &o) {
    if (o.topic.empty() || o.count == 0) die("memory needs --topic and --count");
    char errstr[1024];
    // Windows never close during the run: long idle timeout, event times all in one window.
    Json window = {{"idle_timeout_ms", 3600000}};
    iots_pipeline_t *pipeline = nullptr;
    check(iots_pipeline_new(pipeline_config(o, window).dump().c_str(), &pipeline, errstr, sizeof errstr), errstr,
          "iots_pipeline_new");
    uint64_t rss_before = resident_bytes();
    uint64_t heap_before = heap_in_use();
    auto start = Clock::now();
    const double cpu_start = cpu_seconds();
    check(iots_pipeline_start(pipeline, errstr, sizeof errstr), errstr, "iots_pipeline_start");
    Json s;
    std::optional<Clock::time_point> first_record;  // the group join is not measured
    for (;;) {
        s = pipeline_stats(pipeline);
        const uint64_t consumed = s.value("consumed", uint64_t{0});
        if (consumed > 0 && !first_record) first_record = Clock::now();
        if (consumed >= o.count || s.value("failed", false)) break;
        if (seconds_since(start) > o.timeout_s) die("memory: the pipeline did not consume --count records in time");
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    // From the first to the last record consumed (within 10 ms each); CPU from start (the join is idle).
    const double elapsed = seconds_since(first_record.value_or(start));
    const double cpu = cpu_seconds() - cpu_start;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // outputs of the last batch settle
    uint64_t rss_after = resident_bytes();
    uint64_t heap_after = heap_in_use();
    s = pipeline_stats(pipeline);
    iots_pipeline_stop(pipeline, 0, 30000, errstr, sizeof errstr);
    iots_pipeline_destroy(pipeline);
    return {{"records", s["consumed"]}, {"elapsed_s", elapsed}, {"cpu_s", cpu},
            {"rss_before", rss_before}, {"rss_after", rss_after},
            {"heap_before", heap_before}, {"heap_after", heap_after},
            {"windows_emitted", s["emitted"].value("windows", 0)}, {"stats", s}};
}

}  // namespace

int main(int argc, char **argv) {
    Options o = parse_options(argc, argv);
    iots_log_set_level(IOTS_LOG_WARN);
    Json result;
    if (o.command == "produce") result = command_produce(o);
    else if (o.command == "loadgen") result = command_loadgen(o);
    else if (o.command == "consume-rdkafka") result = command_consume_rdkafka(o);
    else if (o.command == "pipeline") result = command_pipeline(o);
    else if (o.command == "latency") result = command_latency(o);
    else if (o.command == "memory") result = command_memory(o);
    else die("unknown command '" + o.command + "' (see --help)");
    emit_result(result);
    return 0;
}
