// The load generator: the seed's HighThroughputProducer. Several threads share one producer and
// hold a target rate by pacing batches against an absolute schedule (never by sleeping per
// message), so the achieved rate does not drift with the cost of each send.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <random>
#include <thread>

#include "common/config.hpp"
#include "common/defaults.hpp"
#include "common/log.hpp"
#include "kafka/envelope.hpp"
#include "kafka/producer.hpp"

namespace iotstream {
namespace {

using Clock = std::chrono::steady_clock;

// Appends `value` rounded to `decimals` places, the way the seed's round() prints it.
void append_fixed(std::string &out, double value, int decimals) {
    char buf[32];
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed, decimals);
    out.append(buf, ptr);
}

// One synthetic reading's "data" object. Normal ranges are the seed's, except battery: the seed
// draws it from 0..100, so 10% of its "normal" readings are low_battery anomalies; here normal
// batteries are 15..100 and anomalies come only from `anomaly_share`.
struct ReadingGenerator {
    std::mt19937_64 rng;
    std::uniform_real_distribution<double> unit{0.0, 1.0};
    double anomaly_share;

    ReadingGenerator(uint64_t seed, double share) : rng(seed), anomaly_share(share) {}

    double uniform(double lo, double hi) { return lo + (hi - lo) * unit(rng); }

    // Returns true when the reading is anomalous.
    bool data_json(std::string &out) {
        double temperature = uniform(20.0, 35.0);
        double humidity = uniform(30.0, 80.0);
        double pressure = uniform(1000.0, 1020.0);
        double battery = uniform(15.0, 100.0);
        bool anomalous = unit(rng) < anomaly_share;
        if (anomalous) {
            switch (rng() % 5) {  // one of the seed's three rules, both sides where it has two
                case 0: temperature = uniform(40.5, 50.0); break;
                case 1: temperature = uniform(-10.0, -0.5); break;
                case 2: humidity = uniform(95.5, 100.0); break;
                case 3: humidity = uniform(0.0, 4.5); break;
                default: battery = uniform(0.0, 9.5); break;
            }
        }
        out.clear();
        out += "{\"temperature\":";
        append_fixed(out, temperature, 2);
        out += ",\"humidity\":";
        append_fixed(out, humidity, 2);
        out += ",\"pressure\":";
        append_fixed(out, pressure, 2);
        out += ",\"battery_level\":";
        append_fixed(out, battery, 1);
        out += ",\"location\":{\"lat\":";
        append_fixed(out, uniform(37.0, 38.0), 6);
        out += ",\"lon\":";
        append_fixed(out, uniform(-122.0, -121.0), 6);
        out += "}}";
        return anomalous;
    }
};

}  // namespace
}  // namespace iotstream

using namespace iotstream;

struct iots_loadgen_s {
    double rate = 0;            // msgs/s over all threads; 0 = unpaced
    double duration_s = 0;      // 0 = no limit
    uint64_t count = 0;         // 0 = no limit
    uint64_t sensors = 100000;
    int threads = 2;
    double anomaly_share = 0.01;
    uint64_t seed = 1;
    std::string topic;
    std::unique_ptr<Producer> producer;

    std::atomic<uint64_t> sent{0}, delivered{0}, failed{0}, anomalous{0};
    std::atomic<uint64_t> claimed{0};  // readings handed out to threads (for count limits)
    std::atomic<bool> stop{false};
    std::vector<std::thread> workers;
    std::atomic<int> running_workers{0};
    std::mutex done_mutex;
    std::condition_variable done_cv;
    bool started = false;
    Clock::time_point start_time{};
    std::atomic<int64_t> end_ns{0};  // elapsed when the last worker finished; 0 while running
    std::string error;

    double elapsed_s() const {
        int64_t end = end_ns.load();
        if (!started) return 0;
        if (end > 0) return static_cast<double>(end) / 1e9;
        return std::chrono::duration<double>(Clock::now() - start_time).count();
    }

    // Claims up to `want` readings of the count budget; returns how many were granted.
    uint64_t claim(uint64_t want) {
        if (count == 0) return want;
        uint64_t before = claimed.fetch_add(want);
        if (before >= count) return 0;
        return std::min(want, count - before);
    }

    void worker(int index) {
        static const auto log = logger("loadgen");
        ReadingGenerator generator(seed * 1000003 + static_cast<uint64_t>(index), anomaly_share);
        EnvelopeWriter envelope;
        std::string data;
        std::string key = "sensor_";
        const double thread_rate = rate / threads;
        // Batches of ~5 ms worth of readings (at least 1) on an absolute schedule.
        const uint64_t batch = rate > 0 ? std::max<uint64_t>(1, static_cast<uint64_t>(thread_rate * 0.005)) : 1000;
        const auto period = rate > 0 ? std::chrono::duration<double>(static_cast<double>(batch) / thread_rate)
                                     : std::chrono::duration<double>(0);
        const auto deadline = duration_s > 0 ? start_time + std::chrono::duration_cast<Clock::duration>(
                                                                std::chrono::duration<double>(duration_s))
                                             : Clock::time_point::max();
        auto next = start_time;
        uint64_t sequence = static_cast<uint64_t>(index);
        try {
            while (!stop.load(std::memory_order_relaxed) && Clock::now() < deadline) {
                uint64_t n = claim(batch);
                if (n == 0) break;
                for (uint64_t i = 0; i < n; ++i) {
                    // Sensors are spread over threads; every thread cycles through its share.
                    uint64_t sensor = sequence % sensors;
                    sequence += static_cast<uint64_t>(threads);
                    key.resize(7);  // keeps "sensor_"
                    char digits[24];
                    key.append(digits, std::to_chars(digits, digits + sizeof digits, sensor).ptr);
                    if (generator.data_json(data)) anomalous.fetch_add(1, std::memory_order_relaxed);
                    std::string_view value = envelope.build(key, data);
                    producer->send(topic, key, value, {}, nullptr);
                    sent.fetch_add(1, std::memory_order_relaxed);
                }
                if (rate > 0) {
                    next += std::chrono::duration_cast<Clock::duration>(period);
                    std::this_thread::sleep_until(std::min(next, deadline));
                }
            }
        } catch (const std::exception &e) {
            log->error("load generator thread {} stopped: {}", index, e.what());
            std::lock_guard lock(done_mutex);
            if (error.empty()) error = e.what();
        }
        if (running_workers.fetch_sub(1) == 1) {
            end_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_time).count();
            std::lock_guard lock(done_mutex);
            done_cv.notify_all();
        }
    }

    void join() {
        for (auto &t : workers)
            if (t.joinable()) t.join();
    }
};

extern "C" {

IOTS_EXPORT iots_err_t iots_loadgen_new(const char *config_json, iots_loadgen_t **loadgenp, char *errstr,
                                        size_t errstr_size) {
    return guard(errstr, errstr_size, [&] {
        require_arg(loadgenp, "loadgenp");
        *loadgenp = nullptr;
        Json doc = parse_config(config_json, "load generator config");
        ConfigReader r(doc, "load generator config");
        auto gen = std::make_unique<iots_loadgen_s>();
        gen->rate = r.get_double("rate", 0);
        gen->duration_s = r.get_double("duration_s", 0);
        gen->count = static_cast<uint64_t>(r.get_int("count", 0, 0, INT64_MAX));
        gen->sensors = static_cast<uint64_t>(r.get_int("sensors", 100000, 1, 100000000));
        gen->threads = static_cast<int>(r.get_int("threads", 2, 1, 64));
        gen->anomaly_share = r.get_double("anomaly_share", 0.01);
        gen->seed = static_cast<uint64_t>(r.get_int("seed", 1, 0, INT64_MAX));
        gen->topic = r.get_string("topic", kTopicReadings);
        Json producer_config = r.get_json("producer", Json::object());
        r.finish();
        if (gen->rate < 0) throw Error(IOTS_ERR_CONFIG, "load generator config: key 'rate' must be >= 0");
        if (gen->duration_s < 0) throw Error(IOTS_ERR_CONFIG, "load generator config: key 'duration_s' must be >= 0");
        if (gen->duration_s == 0 && gen->count == 0)
            throw Error(IOTS_ERR_CONFIG, "load generator config: give 'duration_s' or 'count' (or both)");
        if (gen->anomaly_share < 0 || gen->anomaly_share > 1)
            throw Error(IOTS_ERR_CONFIG, "load generator config: key 'anomaly_share' must be in [0, 1]");
        if (gen->topic.empty()) throw Error(IOTS_ERR_CONFIG, "load generator config: key 'topic' is empty");
        iots_loadgen_s *raw = gen.get();
        gen->producer = std::make_unique<Producer>(producer_config, [raw](const iots_delivery_report_t &report, const rd_kafka_message_t &) {
            (report.err == IOTS_OK ? raw->delivered : raw->failed).fetch_add(1, std::memory_order_relaxed);
        });
        *loadgenp = gen.release();
    });
}

IOTS_EXPORT iots_err_t iots_loadgen_start(iots_loadgen_t *gen, char *errstr, size_t errstr_size) {
    return guard(errstr, errstr_size, [&] {
        require_arg(gen, "loadgen");
        if (gen->started) throw Error(IOTS_ERR_STATE, "the load generator was already started");
        gen->started = true;
        gen->start_time = Clock::now();
        gen->running_workers = gen->threads;
        for (int i = 0; i < gen->threads; ++i) gen->workers.emplace_back([gen, i] { gen->worker(i); });
        logger("loadgen")->info("generating {} readings/s for {} sensors on {} thread(s)",
                                gen->rate > 0 ? std::to_string(gen->rate) : std::string("max"), gen->sensors,
                                gen->threads);
    });
}

IOTS_EXPORT iots_err_t iots_loadgen_wait(iots_loadgen_t *gen, int timeout_ms) {
    return guard(nullptr, 0, [&] {
        require_arg(gen, "loadgen");
        if (!gen->started) throw Error(IOTS_ERR_STATE, "the load generator was not started");
        std::unique_lock lock(gen->done_mutex);
        auto done = [&] { return gen->running_workers.load() == 0; };
        if (timeout_ms < 0)
            gen->done_cv.wait(lock, done);
        else if (!gen->done_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), done))
            return IOTS_ERR_TIMED_OUT;
        return IOTS_OK;
    });
}

IOTS_EXPORT void iots_loadgen_stop(iots_loadgen_t *gen) {
    if (gen) gen->stop = true;
}

IOTS_EXPORT iots_err_t iots_loadgen_get_stats(iots_loadgen_t *gen, iots_loadgen_stats_t *stats) {
    return guard(nullptr, 0, [&] {
        require_arg(gen, "loadgen");
        require_arg(stats, "stats");
        if (stats->struct_size < sizeof(iots_loadgen_stats_t))
            throw Error(IOTS_ERR_INVALID_ARG, "stats->struct_size is smaller than iots_loadgen_stats_t");
        stats->sent = gen->sent.load();
        stats->delivered = gen->delivered.load();
        stats->failed = gen->failed.load();
        stats->anomalous = gen->anomalous.load();
        stats->elapsed_s = gen->elapsed_s();
        stats->achieved_rate = stats->elapsed_s > 0 ? static_cast<double>(stats->sent) / stats->elapsed_s : 0;
    });
}

IOTS_EXPORT void iots_loadgen_destroy(iots_loadgen_t *gen) {
    if (!gen) return;
    gen->stop = true;
    gen->join();
    try {
        gen->producer->close(30000);
    } catch (...) {
    }
    delete gen;
}

}  // extern "C"
