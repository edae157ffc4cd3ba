// iotstream-host: a gateway that adopts iotstream the way an existing C++ program would. It
// dlopen()s libiotstream at run time (no link-time dependency), takes the C API table with one
// dlsym, and runs the whole IoT job: embedded broker, load generator, pipeline, live progress,
// summary. See --help.
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/checked_int.hpp"
#include "devices/device_load.hpp"
#include "gateway/gateway.hpp"
#include "dashboard/dashboard.hpp"
#include "metrics/metrics_route.hpp"
#include "iotstream/iotstream.h"

namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

const char *kUsage = R"(Usage: iotstream-host [run] [options]        the IoT job (default)
       iotstream-host produce [options]          load generator only
       iotstream-host plugins [--plugins DIR]    describe the plugins in a folder
       iotstream-host gateway [options]          the device gateway (HTTP, MQTT) only
       iotstream-host devices --via mqtt|http    simulated devices through a gateway (load client)

The default run starts an embedded Kafka broker, generates the seed's sensor readings at a
target rate, runs the pipeline (anomaly rules, per-sensor aggregation, event-time windows)
as a consumer group, shows live progress and ends with a summary.

Job:
  --duration SECONDS      how long to generate readings (default 60)
  --rate MSGS_PER_S       target generation rate (default 20000; 0 = as fast as possible)
  --count N               stop generating after N readings (with or instead of --duration)
  --sensors N             distinct sensors (default 100000)
  --anomaly-share F       fraction of readings outside the normal ranges (default 0.01)
  --seed N                generator seed (default 1)
  --threads N             generator threads (default 2)
  --window-size SECONDS   tumbling window length (default 300; try 10 for a short demo)
  --grace SECONDS         how late a reading may arrive and still count (default 10)
  --idle-timeout MS       close windows of a quiet partition after this (default 30000)
  --aggregate-interval MS emit per-sensor aggregates this often (default 5000)
  --plugins DIR           plugin folder, watched for new rule plugins (default: built-in)
  --via mqtt|http         the devices send through the gateway instead of the generator
                          producing to Kafka: mqtt publishes to --mqtt (default: a mosquitto
                          of our own, --mqtt start), http posts to the gateway's server
  --config FILE           JSON: {"pipeline": {...}, "loadgen": {...}, "broker": {...},
                          "ingest": {...}} (ingest: iots_ingest_new's keys, e.g. "devices");
                          flags override it
Kafka:
  --bootstrap HOST:PORT   use this cluster instead of starting an embedded broker
  --partitions N          partitions of the embedded broker's topics (default 8)
  --group ID              consumer group (default iotstream-host)
  --input-topic NAME      read this topic (default iot-readings)
  --no-generate           consume only (scale-out members, replays)
  --bounded               replay: process what the input topic holds now, then exit
                          (implies --no-generate)
  --run-for SECONDS       with --no-generate and not --bounded: stop after this long
                          (default: until SIGINT/SIGTERM)
  --on-stop resume|close  what a stop does with open windows: resume leaves them to the
                          partitions' next owner (no partial window); close emits them now.
                          Default: close with the embedded broker (its data dies with this
                          process), resume with --bootstrap; --bounded always closes.
                          The config file's pipeline.stop.close_windows, if set, is the default
Devices (iotstream-host devices; --rate, --duration, --count, --sensors, --threads, --seed,
--anomaly-share as above; --threads is the number of connections):
  --via mqtt|http         publish to --mqtt HOST:PORT (topic devices/<id>/readings, QoS
                          --mqtt-qos) or POST to --url http://HOST:PORT with --token-file
  --batch N               readings per message or request, one device's (default 1)
Output:
  --show-windows N        print N window results at the end (default 8)
  --summary-json FILE     also write the summary as JSON (for scripts and tests)
  --metrics-listen HOST:PORT  serve GET /metrics (Prometheus text) there while the pipeline
                          runs; with --gateway-listen the gateway's server serves it too
  --dashboard-listen HOST:PORT  serve the live dashboard there (GET /: throughput, backlog,
                          latest windows per sensor, alerts as they happen, dead letters,
                          plugins; GET /metrics too), e.g. 127.0.0.1:8090
  --log-level LEVEL       trace|debug|info|warn|error (default warn)
  --library PATH          libiotstream to load (default: next to this program, then the
                          system's libiotstream.so.1)
  --help                  this text

Scale out: start several iotstream-host processes with the same --group against one
cluster (--bootstrap, e.g. from iotstream-broker): Kafka shares the partitions among them,
and when one stops the others take its partitions over from its last commit.
)";

[[noreturn]] void die(const std::string &message) {
    std::fprintf(stderr, "iotstream-host: %s\n", message.c_str());
    std::exit(2);
}

struct Options {
    std::string command = "run";
    double duration_s = 60;
    bool duration_given = false;
    double rate = 20000;
    uint64_t count = 0;
    uint64_t sensors = 100000;
    double anomaly_share = 0.01;
    uint64_t seed = 1;
    int threads = 2;
    int window_size_s = 300;
    int grace_s = 10;
    int idle_timeout_ms = 30000;
    int aggregate_interval_ms = 5000;
    std::string plugins;
    std::string config_file;
    std::string bootstrap;
    int partitions = 8;
    std::string group = "iotstream-host";
    std::string input_topic = "iot-readings";
    bool generate = true;
    bool bounded = false;
    double run_for_s = 0;
    std::string on_stop;  // "resume" | "close" | "" (the default for the broker in use)
    int show_windows = 8;
    std::string summary_json;
    std::string metrics_listen;
    std::string dashboard_listen;
    std::string log_level = "warn";
    std::string library;
    iotstream_host::gateway::GatewayOptions gateway;
    std::string via;         // run: "", "mqtt" or "http"; devices: "mqtt" (default) or "http"
    std::string url;         // devices --via http: the gateway
    std::string token_file;  // devices --via http: the shared token
    int batch = 1;
};

double parse_number(const std::string &flag, const std::string &text, double min) {
    char *end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(value) || value < min)
        die(flag + " needs a number >= " + std::to_string(min) + ", got '" + text + "'");
    return value;
}

Options parse_options(int argc, char **argv) {
    Options o;
    int i = 1;
    if (argc > 1 && argv[1][0] != '-') {
        o.command = argv[1];
        if (o.command != "run" && o.command != "produce" && o.command != "plugins" && o.command != "gateway" &&
            o.command != "devices")
            die("unknown command '" + o.command + "' (run, produce, plugins, gateway, devices; see --help)");
        i = 2;
    }
    for (; i < argc; ++i) {
        std::string flag = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) die(flag + " needs a value (see --help)");
            return argv[++i];
        };
        // Integer flags go through the core's one checked conversion (header-only): a value out
        // of range or with a fraction is refused by name, never wrapped or truncated.
        auto integer = [&](int64_t min, int64_t max = INT32_MAX) {
            int64_t result = 0;
            std::string why;
            if (!iotstream::checked_int_text(value(), min, max, result, why)) die(flag + " " + why);
            return result;
        };
        if (flag == "--help" || flag == "-h") {
            std::fputs(kUsage, stdout);
            std::fputs(iotstream_host::gateway::kGatewayUsage, stdout);
            std::fputs(iotstream_host::mqtt::kMqttUsage, stdout);
            std::exit(0);
        } else if (flag == "--duration") {
            o.duration_s = parse_number(flag, value(), 0);
            o.duration_given = true;
        } else if (flag == "--rate") o.rate = parse_number(flag, value(), 0);
        else if (flag == "--count") o.count = static_cast<uint64_t>(integer(0, INT64_MAX));
        else if (flag == "--sensors") o.sensors = static_cast<uint64_t>(integer(1, INT64_MAX));
        else if (flag == "--anomaly-share") o.anomaly_share = parse_number(flag, value(), 0);
        else if (flag == "--seed") o.seed = static_cast<uint64_t>(integer(0, INT64_MAX));
        else if (flag == "--threads") o.threads = static_cast<int>(integer(1));
        else if (flag == "--window-size") o.window_size_s = static_cast<int>(integer(1));
        else if (flag == "--grace") o.grace_s = static_cast<int>(integer(0));
        else if (flag == "--idle-timeout") o.idle_timeout_ms = static_cast<int>(integer(1));
        else if (flag == "--aggregate-interval") o.aggregate_interval_ms = static_cast<int>(integer(1));
        else if (flag == "--plugins") o.plugins = value();
        else if (flag == "--config") o.config_file = value();
        else if (flag == "--bootstrap") o.bootstrap = value();
        else if (flag == "--partitions") o.partitions = static_cast<int>(integer(1));
        else if (flag == "--group") o.group = value();
        else if (flag == "--input-topic") o.input_topic = value();
        else if (flag == "--no-generate") o.generate = false;
        else if (flag == "--bounded") o.bounded = true;
        else if (flag == "--run-for") o.run_for_s = parse_number(flag, value(), 0);
        else if (flag == "--on-stop") {
            o.on_stop = value();
            if (o.on_stop != "resume" && o.on_stop != "close") die("--on-stop must be resume or close");
        }
        else if (flag == "--show-windows") o.show_windows = static_cast<int>(integer(0));
        else if (flag == "--summary-json") o.summary_json = value();
        else if (flag == "--metrics-listen") o.metrics_listen = value();
        else if (flag == "--dashboard-listen") o.dashboard_listen = value();
        else if (flag == "--log-level") o.log_level = value();
        else if (flag == "--library") o.library = value();
        else if (flag == "--via") {
            o.via = value();
            if (o.via != "mqtt" && o.via != "http") die("--via must be mqtt or http");
        } else if (flag == "--url") o.url = value();
        else if (flag == "--token-file") o.token_file = value();
        else if (flag == "--batch") o.batch = static_cast<int>(integer(1, 10000));
        else {
            try {
                if (!iotstream_host::gateway::parse_gateway_flag(flag, value, o.gateway))
                    die("unknown option '" + flag + "' (see --help)");
            } catch (const std::runtime_error &e) {
                die(e.what());
            }
        }
    }
    if (o.anomaly_share > 1) die("--anomaly-share must be in [0, 1]");
    if (o.bounded) o.generate = false;
    if (o.count > 0 && !o.duration_given) o.duration_s = 0;  // --count alone: no time limit
    return o;
}

// ---- the library, loaded at run time ------------------------------------------------------

const iots_api_t *load_library(const Options &o) {
    std::vector<std::string> candidates;
    if (!o.library.empty()) {
        candidates.push_back(o.library);
    } else {
        std::error_code ec;
        auto self = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
        for (auto relative : {"../core/libiotstream.so.1", "../lib/libiotstream.so.1", "libiotstream.so.1"})
            if (std::filesystem::exists(self / relative)) candidates.push_back((self / relative).string());
        candidates.push_back("libiotstream.so.1");  // the dynamic linker's search path
    }
    std::string errors;
    for (const std::string &path : candidates) {
        // RTLD_LOCAL: the library's symbols stay out of the host's namespace.
        void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
            errors += std::string("\n  ") + dlerror();
            continue;
        }
        auto get_api = reinterpret_cast<iots_get_api_fn>(dlsym(handle, "iots_get_api"));
        if (!get_api) die(path + " has no iots_get_api: not libiotstream?");
        char errstr[256];
        const iots_api_t *api = get_api(IOTS_ABI_MAJOR, IOTS_ABI_MINOR, errstr, sizeof errstr);
        if (!api) die(path + ": " + errstr);
        return api;
    }
    die("cannot load libiotstream:" + errors);
}

const iots_api_t *api = nullptr;

void check(iots_err_t err, const char *errstr, const std::string &what) {
    if (err != IOTS_OK) die(what + ": " + (errstr && *errstr ? errstr : api->err_str(err)));
}

Json pipeline_stats(iots_pipeline_t *pipeline) {
    std::string buf(8192, '\0');
    size_t needed = 0;
    iots_err_t err = api->pipeline_stats_json(pipeline, buf.data(), buf.size(), &needed);
    if (err == IOTS_ERR_BUFFER_TOO_SMALL) {
        buf.resize(needed);
        err = api->pipeline_stats_json(pipeline, buf.data(), buf.size(), &needed);
    }
    if (err != IOTS_OK) return Json::object();
    return Json::parse(buf.c_str(), nullptr, false);
}

// ---- signals: a dedicated thread waits for them; the main loop polls the flag ---------------

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};

void start_signal_thread() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any library thread exists: inherited
    std::thread([set] {
        int sig = 0;
        sigwait(&set, &sig);
        g_signal = sig;
        g_stop = true;
    }).detach();
}

// ---- presentation -------------------------------------------------------------------------

std::string human_rate(double per_s) {
    char buf[32];
    if (per_s >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM/s", per_s / 1e6);
    else if (per_s >= 1e3) std::snprintf(buf, sizeof buf, "%.1fK/s", per_s / 1e3);
    else std::snprintf(buf, sizeof buf, "%.0f/s", per_s);
    return buf;
}

uint64_t json_u64(const Json &j, std::initializer_list<const char *> path) {
    const Json *at = &j;
    for (const char *key : path) {
        if (!at->is_object() || !at->contains(key)) return 0;
        at = &(*at)[key];
    }
    return at->is_number() ? at->get<uint64_t>() : 0;
}

void print_windows(const Options &o, const std::string &bootstrap) {
    if (o.show_windows <= 0) return;
    char errstr[512];
    iots_consumer_t *consumer = nullptr;
    Json config = {{"group_id", "iotstream-host-window-viewer-" + std::to_string(getpid())},
                   {"auto_offset_reset", "earliest"},
                   {"topics", {"iot-windows"}},
                   {"kafka", {{"bootstrap.servers", bootstrap}, {"enable.partition.eof", "true"}}}};
    if (api->consumer_new(config.dump().c_str(), nullptr, nullptr, &consumer, errstr, sizeof errstr) != IOTS_OK) {
        std::fprintf(stderr, "cannot read windows: %s\n", errstr);
        return;
    }
    std::vector<Json> windows;
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (windows.size() < static_cast<size_t>(o.show_windows) && Clock::now() < deadline) {
        iots_batch_t *batch = nullptr;
        if (api->consumer_poll_batch(consumer, 1000, 500, &batch, errstr, sizeof errstr) != IOTS_OK) break;
        for (size_t i = 0; i < api->batch_count(batch) && windows.size() < static_cast<size_t>(o.show_windows); ++i) {
            const iots_record_t *r = api->batch_record(batch, i);
            Json envelope = Json::parse(static_cast<const char *>(r->value),
                                        static_cast<const char *>(r->value) + r->value_len, nullptr, false);
            if (envelope.is_object() && envelope.contains("data")) windows.push_back(envelope["data"]);
        }
        api->batch_destroy(batch);
    }
    api->consumer_close(consumer);
    if (windows.empty()) {
        std::printf("\nNo window has closed yet (windows close at end + grace; try --window-size 10).\n");
        return;
    }
    std::printf("\nSome window results (topic iot-windows):\n");
    std::printf("  %-14s %-20s %5s  %7s %7s %7s %6s  %7s %8s  %s\n", "sensor", "window (UTC)", "n", "t.min", "t.avg",
                "t.max", "t.std", "h.avg", "p.avg", "anomalies");
    for (const Json &w : windows) {
        auto num = [&](const char *group, const char *key) {
            const Json &v = w.value(group, Json::object()).value(key, Json());
            return v.is_number() ? v.get<double>() : NAN;
        };
        std::time_t start = w.value("window_start", 0);
        char when[32];
        std::strftime(when, sizeof when, "%m-%d %H:%M:%S", std::gmtime(&start));
        std::string anomalies;
        for (const Json &a : w.value("anomalies", Json::array())) anomalies += (anomalies.empty() ? "" : ",") + a.get<std::string>();
        std::printf("  %-14s %-14s+%4ds %5d  %7.2f %7.2f %7.2f %6.2f  %7.2f %8.2f  %s\n",
                    w.value("sensor_id", "?").c_str(), when,
                    w.value("window_end", 0) - w.value("window_start", 0), w.value("sample_count", 0),
                    num("temperature", "min"), num("temperature", "avg"), num("temperature", "max"),
                    num("temperature", "std"), num("humidity", "avg"), num("pressure", "avg"),
                    anomalies.empty() ? "-" : anomalies.c_str());
    }
}

// ---- commands -----------------------------------------------------------------------------

Json read_config_file(const Options &o) {
    if (o.config_file.empty()) return Json::object();
    std::ifstream in(o.config_file);
    if (!in) die("cannot read --config " + o.config_file);
    Json doc = Json::parse(in, nullptr, false);
    if (!doc.is_object()) die("--config " + o.config_file + " is not a JSON object");
    for (auto &[key, value] : doc.items())
        if (key != "pipeline" && key != "loadgen" && key != "broker" && key != "ingest")
            die("--config " + o.config_file + ": unknown key '" + key + "' (pipeline, loadgen, broker, ingest)");
    return doc;
}

Json loadgen_config(const Options &o, const Json &file, const std::string &bootstrap) {
    Json c = file.value("loadgen", Json::object());
    c["rate"] = o.rate;
    if (o.duration_s > 0) c["duration_s"] = o.duration_s;
    if (o.count > 0) c["count"] = o.count;
    c["sensors"] = o.sensors;
    c["threads"] = o.threads;
    c["anomaly_share"] = o.anomaly_share;
    c["seed"] = o.seed;
    c["topic"] = o.input_topic;
    c["producer"]["kafka"]["bootstrap.servers"] = bootstrap;
    return c;
}

Json describe_plugins(const Options &o) {
    std::string buf(1 << 16, '\0');
    size_t needed = 0;
    char errstr[512];
    const char *dir = o.plugins.empty() ? nullptr : o.plugins.c_str();
    iots_err_t err = api->plugins_describe_json(dir, buf.data(), buf.size(), &needed, errstr, sizeof errstr);
    if (err == IOTS_ERR_BUFFER_TOO_SMALL) {
        buf.resize(needed);
        err = api->plugins_describe_json(dir, buf.data(), buf.size(), &needed, errstr, sizeof errstr);
    }
    check(err, errstr, "describing plugins");
    return Json::parse(buf.c_str());
}

int command_plugins(const Options &o) {
    Json doc = describe_plugins(o);
    std::printf("Plugins in %s\n", doc.value("dir", "?").c_str());
    for (const Json &p : doc.value("plugins", Json::array())) {
        std::printf("\n  %s %s (%s) - %s\n", p.value("name", "?").c_str(), p.value("version", "").c_str(),
                    p.value("kind", "").c_str(), p.value("description", "").c_str());
        for (const Json &k : p.value("config", Json::array()))
            std::printf("      %-18s %-7s default %-14s %s\n", k.value("name", "").c_str(), k.value("type", "").c_str(),
                        k.contains("default") ? k["default"].dump().c_str() : "(required)",
                        k.value("help", "").c_str());
    }
    for (const Json &r : doc.value("rejected", Json::array()))
        std::printf("\n  rejected: %s\n", r.value("reason", "").c_str());
    return 0;
}

int command_produce(const Options &o) {
    if (o.bootstrap.empty()) die("produce needs --bootstrap HOST:PORT (e.g. from iotstream-broker)");
    if (o.duration_s <= 0 && o.count == 0) die("produce needs --duration or --count");
    Json file = read_config_file(o);
    char errstr[512];
    iots_loadgen_t *gen = nullptr;
    check(api->loadgen_new(loadgen_config(o, file, o.bootstrap).dump().c_str(), &gen, errstr, sizeof errstr), errstr,
          "load generator");
    check(api->loadgen_start(gen, errstr, sizeof errstr), errstr, "starting the load generator");
    iots_loadgen_stats_t s{};
    s.struct_size = sizeof s;
    while (api->loadgen_wait(gen, 1000) == IOTS_ERR_TIMED_OUT && !g_stop) {
        api->loadgen_get_stats(gen, &s);
        std::fprintf(stderr, "\r  produced %10llu  (%s)   ", static_cast<unsigned long long>(s.sent),
                     human_rate(s.achieved_rate).c_str());
    }
    api->loadgen_stop(gen);
    api->loadgen_wait(gen, -1);
    api->loadgen_get_stats(gen, &s);
    api->loadgen_destroy(gen);  // flushes: every accepted reading is delivered or failed
    iots_loadgen_stats_t final_stats{};
    final_stats.struct_size = sizeof final_stats;
    std::printf("\nproduced %llu readings in %.1f s (%s); anomalous %llu\n", static_cast<unsigned long long>(s.sent),
                s.elapsed_s, human_rate(s.achieved_rate).c_str(), static_cast<unsigned long long>(s.anomalous));
    return 0;
}

// The embedded broker with the job's topics, unless --bootstrap names a cluster; returns the
// bootstrap address.
std::string start_broker(const Options &o, const Json &file, iots_broker_t **broker) {
    if (!o.bootstrap.empty()) return o.bootstrap;
    char errstr[1024];
    Json broker_config = file.value("broker", Json::object());
    if (!broker_config.contains("topics")) {
        broker_config["topics"] = Json::array();
        for (const char *t : {"iot-readings", "iot-windows", "iot-aggregates", "iot-alerts", "iot-dlq"})
            broker_config["topics"].push_back({{"name", t}, {"partitions", o.partitions}});
        if (o.input_topic != "iot-readings")
            broker_config["topics"].push_back({{"name", o.input_topic}, {"partitions", o.partitions}});
    }
    check(api->broker_new(broker_config.dump().c_str(), broker, errstr, sizeof errstr), errstr,
          "starting the embedded broker");
    std::string bootstrap = api->broker_bootstrap(*broker);
    std::printf("embedded Kafka broker at %s\n", bootstrap.c_str());
    return bootstrap;
}

int command_gateway(const Options &o) {
    Json file = read_config_file(o);
    iots_broker_t *broker = nullptr;
    const std::string bootstrap = start_broker(o, file, &broker);
    int code = 0;
    try {
        code = iotstream_host::gateway::serve_gateway(api, o.gateway, bootstrap, file.value("ingest", Json::object()),
                                                      g_stop, o.run_for_s, o.summary_json);
    } catch (const std::runtime_error &e) {
        std::fprintf(stderr, "iotstream-host: %s\n", e.what());
        code = 2;
    }
    if (broker) api->broker_destroy(broker);
    return code;
}

iotstream_host::devices::DeviceLoadOptions device_options(const Options &o) {
    iotstream_host::devices::DeviceLoadOptions d;
    d.via = o.via.empty() ? "mqtt" : o.via;
    d.mqtt_broker = o.gateway.mqtt.broker;
    d.qos = o.gateway.mqtt.qos;
    d.http_url = o.url;
    d.rate = o.rate;
    d.duration_s = o.duration_s;
    d.count = o.count;
    d.sensors = o.sensors;
    d.connections = o.threads;
    d.batch = o.batch;
    d.anomaly_share = o.anomaly_share;
    d.seed = o.seed;
    return d;
}

std::string first_line(const std::string &path) {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line)) die("cannot read " + path);
    return line;
}

// `iotstream-host devices`: the load client; needs a running gateway (and broker).
int command_devices(const Options &o) {
    iotstream_host::devices::DeviceLoadOptions d = device_options(o);
    if (d.via == "mqtt" && (d.mqtt_broker.empty() || d.mqtt_broker == "start"))
        die("devices --via mqtt needs --mqtt HOST:PORT (the broker the gateway subscribes to)");
    if (d.via == "http") {
        if (o.url.empty() || o.token_file.empty()) die("devices --via http needs --url http://HOST:PORT and --token-file");
        d.token = first_line(o.token_file);
    }
    if (d.duration_s <= 0 && d.count == 0) die("devices needs --duration or --count");
    try {
        return iotstream_host::devices::run_devices_command(d, g_stop, o.summary_json);
    } catch (const std::runtime_error &e) {
        die(e.what());
    }
}

// --via http without tokens of the user's: a random shared token for our own devices, in a
// file only we can read (the gateway reads tokens from files), removed once read.
std::string make_shared_token(Options &o) {
    std::random_device random;
    char token[33];
    for (int i = 0; i < 32; ++i) token[i] = "0123456789abcdef"[random() % 16];
    token[32] = '\0';
    char path[] = "/tmp/iotstream-token-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0 || write(fd, token, 32) != 32) die("cannot write a token file");
    close(fd);
    o.gateway.shared_token_file = path;
    return token;
}

int command_run(const Options &o) {
    Json file = read_config_file(o);
    char errstr[1024];

    iots_broker_t *broker = nullptr;
    const std::string bootstrap = start_broker(o, file, &broker);

    // The pipeline document: the config file's, with the flags laid over it.
    Json pipeline_config = file.value("pipeline", Json::object());
    pipeline_config["kafka"]["bootstrap.servers"] = bootstrap;
    pipeline_config["input"]["topics"] = {o.input_topic};
    pipeline_config["input"]["group_id"] = o.group;
    // Stop semantics (docs/pipeline.md, "Stopping"): the flag, else the file, else by broker.
    Json &stop = pipeline_config["stop"];
    if (stop.is_null()) stop = Json::object();
    if (!stop.is_object()) die("--config: pipeline.stop must be an object, e.g. {\"close_windows\": false}");
    if (!o.on_stop.empty())
        stop["close_windows"] = o.on_stop == "close";
    else if (!stop.contains("close_windows"))
        stop["close_windows"] = broker != nullptr;
    if (!o.plugins.empty()) pipeline_config["plugins"]["dir"] = o.plugins;
    if (!pipeline_config.contains("stages"))
        pipeline_config["stages"] = {
            {{"plugin", "anomaly"}},
            {{"plugin", "aggregate"}, {"config", {{"interval_ms", o.aggregate_interval_ms}}}},
            {{"plugin", "window"},
             {"config", {{"size_s", o.window_size_s}, {"grace_s", o.grace_s}, {"idle_timeout_ms", o.idle_timeout_ms}}}}};
    iots_pipeline_t *pipeline = nullptr;
    check(api->pipeline_new(pipeline_config.dump().c_str(), &pipeline, errstr, sizeof errstr), errstr,
          "creating the pipeline");

    auto started = Clock::now();
    iots_loadgen_t *gen = nullptr;
    iots_loadgen_stats_t gen_stats{};
    gen_stats.struct_size = sizeof gen_stats;
    std::unique_ptr<iotstream_host::gateway::Gateway> gateway;
    iots_ingest_t *gateway_ingest = nullptr;
    std::unique_ptr<iotstream_host::http::Server> metrics_server;
    std::unique_ptr<iotstream_host::devices::DeviceLoad> devices;  // --via
    Options gateway_options = o;  // the gateway as --via needs it
    std::string via_token;
    const bool with_gateway = !o.gateway.listen.empty() || !o.gateway.mqtt.broker.empty() || !o.via.empty();
    if (with_gateway) {
        if (gateway_options.gateway.listen.empty()) gateway_options.gateway.listen = "127.0.0.1:0";
        if (o.via == "mqtt" && o.gateway.mqtt.broker.empty()) gateway_options.gateway.mqtt.broker = "start";
        if (o.via == "http" && o.gateway.device_tokens.empty() && o.gateway.shared_token_file.empty())
            via_token = make_shared_token(gateway_options);
        else if (o.via == "http") {
            if (o.gateway.shared_token_file.empty()) die("--via http needs --shared-token-file (the devices use it)");
            via_token = first_line(o.gateway.shared_token_file);
        }
    }
    // The dashboard taps the pipeline's outputs until the pipeline is destroyed: it outlives it.
    std::unique_ptr<iotstream_host::dashboard::Dashboard> dashboard;
    std::unique_ptr<iotstream_host::http::Server> dashboard_server;
    if (!o.dashboard_listen.empty()) {
        try {
            dashboard = std::make_unique<iotstream_host::dashboard::Dashboard>(
                api, pipeline, describe_plugins(o),
                // The backlog (produced - consumed) only when this process produces the input.
                o.generate ? std::function<uint64_t()>([&gen]() -> uint64_t {
                    if (gen == nullptr) return 0;
                    iots_loadgen_stats_t s{};
                    s.struct_size = sizeof s;
                    api->loadgen_get_stats(gen, &s);
                    return s.sent;
                })
                           : nullptr);
            dashboard->attach();
            dashboard_server = iotstream_host::dashboard::serve_dashboard(o.dashboard_listen, *dashboard, api, pipeline);
        } catch (const std::runtime_error &e) {
            die(e.what());
        }
        std::printf("dashboard at http://%s:%u/\n",
                    iotstream_host::http::split_listen(o.dashboard_listen, "--dashboard-listen").first.c_str(),
                    static_cast<unsigned>(dashboard_server->port()));
    }

    if (o.bounded) {
        std::printf("replaying %s (bounded)...\n", o.input_topic.c_str());
        iots_err_t err = api->pipeline_run_bounded(pipeline, -1, errstr, sizeof errstr);
        check(err, errstr, "bounded run");
    } else {
        check(api->pipeline_start(pipeline, errstr, sizeof errstr), errstr, "starting the pipeline");
        if (with_gateway) {
            try {
                gateway = std::make_unique<iotstream_host::gateway::Gateway>(
                    api, gateway_options.gateway, bootstrap, file.value("ingest", Json::object()),
                    [&](iotstream_host::http::Router &router, iots_ingest_t *ingest) {
                        gateway_ingest = ingest;
                        iotstream_host::metrics::add_metrics_route(router, api, pipeline, ingest);
                    });
            } catch (const std::runtime_error &e) {
                die(e.what());
            }
            if (!via_token.empty() && o.gateway.shared_token_file.empty())
                std::remove(gateway_options.gateway.shared_token_file.c_str());
            std::printf("gateway listening on %s (POST /v1/readings, GET /metrics)\n", gateway->url().c_str());
            if (!gateway->mqtt_broker().empty())
                std::printf("gateway subscribing to %s on MQTT broker %s\n", o.gateway.mqtt.topic.c_str(),
                            gateway->mqtt_broker().c_str());
        }
        if (!o.metrics_listen.empty()) {
            try {
                metrics_server = iotstream_host::metrics::serve_metrics(o.metrics_listen, api, pipeline, gateway_ingest);
            } catch (const std::runtime_error &e) {
                die(e.what());
            }
            std::printf("metrics at http://%s:%u/metrics\n",
                        iotstream_host::http::split_listen(o.metrics_listen, "--metrics-listen").first.c_str(),
                        static_cast<unsigned>(metrics_server->port()));
        }
        if (o.generate && !o.via.empty()) {
            if (o.duration_s <= 0 && o.count == 0) die("give --duration or --count");
            iotstream_host::devices::DeviceLoadOptions d = device_options(o);
            d.mqtt_broker = gateway->mqtt_broker();
            d.http_url = gateway->url();
            d.token = via_token;
            // Devices publish only once the gateway listens: MQTT drops what no one subscribes to.
            if (!gateway->wait_mqtt_subscribed(30000)) die("the gateway's MQTT subscription was not granted within 30 s");
            try {
                devices = std::make_unique<iotstream_host::devices::DeviceLoad>(d);
            } catch (const std::runtime_error &e) {
                die(e.what());
            }
            std::printf("devices sending via %s\n", o.via.c_str());
        } else if (o.generate) {
            if (o.duration_s <= 0 && o.count == 0) die("give --duration or --count");
            check(api->loadgen_new(loadgen_config(o, file, bootstrap).dump().c_str(), &gen, errstr, sizeof errstr),
                  errstr, "load generator");
            check(api->loadgen_start(gen, errstr, sizeof errstr), errstr, "starting the load generator");
        }
        std::printf("%8s %12s %10s %12s %10s %10s %9s %8s %6s\n", "elapsed", "produced", "prod/s", "consumed", "cons/s",
                    "backlog", "windows", "alerts", "dlq");
        uint64_t last_produced = 0, last_consumed = 0;
        auto last = Clock::now();
        bool generating = gen != nullptr || devices != nullptr;
        std::optional<Clock::time_point> caught_up_deadline;
        while (!g_stop) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1000));
            if (gen) api->loadgen_get_stats(gen, &gen_stats);
            Json s = pipeline_stats(pipeline);
            auto now = Clock::now();
            double dt = std::chrono::duration<double>(now - last).count();
            last = now;
            uint64_t consumed = json_u64(s, {"consumed"});
            const uint64_t produced = devices ? devices->stats().sent.load() : gen_stats.sent;
            double elapsed = std::chrono::duration<double>(now - started).count();
            std::printf("%7.0fs %12llu %10s %12llu %10s %10lld %9llu %8llu %6llu\n", elapsed,
                        static_cast<unsigned long long>(produced),
                        human_rate(static_cast<double>(produced - last_produced) / dt).c_str(),
                        static_cast<unsigned long long>(consumed),
                        human_rate(static_cast<double>(consumed - last_consumed) / dt).c_str(),
                        gen || devices ? static_cast<long long>(produced) - static_cast<long long>(consumed) : -1LL,
                        static_cast<unsigned long long>(json_u64(s, {"emitted", "windows"})),
                        static_cast<unsigned long long>(json_u64(s, {"alerts"})),
                        static_cast<unsigned long long>(json_u64(s, {"dead_lettered", "total"})));
            std::fflush(stdout);
            last_produced = produced;
            last_consumed = consumed;
            if (s.value("failed", false)) {
                std::fprintf(stderr, "pipeline failed: %s\n", s.value("error", "").c_str());
                break;
            }
            if (generating && (gen ? api->loadgen_wait(gen, 0) == IOTS_OK : devices->done())) {
                generating = false;
                caught_up_deadline = now + std::chrono::seconds(60);
            }
            // Devices done: stop once the gateway has handled what the broker took (MQTT) and the
            // pipeline has consumed every reading the gateway accepted.
            if (devices && !generating) {
                const Json g = gateway->stats();
                const uint64_t handled = o.via == "mqtt" ? json_u64(g, {"mqtt", "received"})
                                                         : devices->stats().acked.load();
                if ((handled >= devices->stats().acked.load() && consumed >= json_u64(g, {"ingest", "accepted"})) ||
                    now > *caught_up_deadline)
                    break;
            }
            // Generation over: stop once the pipeline has consumed everything (or gave up waiting).
            if (gen && !generating && (consumed >= gen_stats.delivered || now > *caught_up_deadline)) break;
            if (!gen && o.run_for_s > 0 && elapsed >= o.run_for_s) break;
        }
        if (gen) {
            api->loadgen_stop(gen);
            api->loadgen_wait(gen, -1);
            api->loadgen_get_stats(gen, &gen_stats);
        }
        if (devices) devices->stop();
        if (g_stop) std::printf("signal %d: shutting down gracefully\n", g_signal.load());
        if (metrics_server) metrics_server->stop();  // before the handles it reads go
        if (dashboard_server) dashboard_server->stop();
        if (gateway) gateway->stop();  // no more readings in; the accepted ones are delivered
        // Graceful: stop consuming, close open windows or leave them to the next owner (as
        // configured above), flush outputs, commit, leave the group.
        check(api->pipeline_stop(pipeline, IOTS_STOP_AS_CONFIGURED, 60000, errstr, sizeof errstr), errstr,
              "stopping the pipeline");
    }

    Json s = pipeline_stats(pipeline);
    double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
    uint64_t consumed = json_u64(s, {"consumed"});
    uint64_t decoded = json_u64(s, {"decoded"});
    uint64_t rejected = json_u64(s, {"dead_lettered", "decoder"});
    // Every output sent was delivered, or it failed and was replaced (sent again, or its dead
    // letter sent) and counted as refused or retried.
    bool reconciled = consumed == decoded + rejected && json_u64(s, {"outputs", "failed"}) == 0 &&
                      json_u64(s, {"outputs", "sent"}) == json_u64(s, {"outputs", "delivered"}) +
                                                              json_u64(s, {"outputs", "refused"}) +
                                                              json_u64(s, {"outputs", "retried"});
    if (gen) reconciled = reconciled && gen_stats.sent == gen_stats.delivered + gen_stats.failed;

    std::printf("\nSummary\n");
    auto row = [](const char *name, const std::string &value) { std::printf("  %-34s %s\n", name, value.c_str()); };
    auto u = [](uint64_t v) { return std::to_string(v); };
    if (gen) {
        row("readings produced", u(gen_stats.sent));
        row("  delivered / failed", u(gen_stats.delivered) + " / " + u(gen_stats.failed));
        row("  anomalous (generated)", u(gen_stats.anomalous));
        row("  achieved rate", human_rate(gen_stats.achieved_rate));
    }
    if (devices) {
        const auto &d = devices->stats();
        row(("readings sent by devices via " + o.via).c_str(), u(d.sent.load()));
        row(o.via == "mqtt" ? "  acknowledged by the broker" : "  accepted by the gateway", u(d.acked.load()));
        row("  failed", u(d.failed.load()));
        row("  anomalous (generated)", u(d.anomalous.load()));
        row("  achieved rate", human_rate(static_cast<double>(d.sent.load()) / std::max(devices->elapsed_s(), 1e-9)));
    }
    row("readings consumed", u(consumed));
    row("  decoded", u(decoded));
    row("  dead-lettered by the decoder", u(rejected));
    row("  dead-lettered by stages (late)", u(json_u64(s, {"dead_lettered", "stages"})));
    row("  dead letters cut to fit", u(json_u64(s, {"dead_lettered", "truncated"})));
    row("outputs refused (dead-lettered)", u(json_u64(s, {"outputs", "refused"})));
    row("alerts", u(json_u64(s, {"alerts"})));
    row("windows emitted", u(json_u64(s, {"emitted", "windows"})));
    row("aggregates emitted", u(json_u64(s, {"emitted", "aggregates"})));
    row("output records sent / delivered", u(json_u64(s, {"outputs", "sent"})) + " / " +
                                               u(json_u64(s, {"outputs", "delivered"})));
    row("commits", u(json_u64(s, {"commits"})));
    row("pipeline throughput", human_rate(static_cast<double>(consumed) / std::max(elapsed, 1e-9)));
    if (gateway) {
        const Json g = gateway->stats();
        row("gateway readings accepted", u(g["ingest"].value("accepted", 0ULL)));
        row("  requests / unauthenticated", u(g["http"]["requests"]) + " / " + u(g["http"]["unauthenticated"]));
        if (g.contains("mqtt"))
            row("  mqtt readings received / accepted", u(g["mqtt"]["received"]) + " / " + u(g["mqtt"]["accepted"]));
        row("  invalid / rate limited", u(g["ingest"].value("invalid", 0ULL)) + " / " +
                                            u(g["ingest"].value("rate_limited", 0ULL)));
    }
    row("counts reconcile", reconciled ? "yes (consumed = decoded + dead-lettered; all outputs delivered)" : "NO");

    if (!o.summary_json.empty()) {
        Json out = {{"pipeline", s}, {"elapsed_s", elapsed}, {"reconciled", reconciled}};
        if (gen)
            out["loadgen"] = {{"sent", gen_stats.sent}, {"delivered", gen_stats.delivered},
                              {"failed", gen_stats.failed}, {"anomalous", gen_stats.anomalous},
                              {"achieved_rate", gen_stats.achieved_rate}};
        if (gateway) out["gateway"] = gateway->stats();
        if (devices)
            out["devices"] = {{"via", o.via}, {"sent", devices->stats().sent.load()},
                              {"acked", devices->stats().acked.load()}, {"failed", devices->stats().failed.load()}};
        std::ofstream(o.summary_json) << out.dump(2) << "\n";
    }
    print_windows(o, bootstrap);

    dashboard_server.reset();
    dashboard.reset();  // its sampler reads the load generator and the pipeline
    if (gen) api->loadgen_destroy(gen);
    api->pipeline_destroy(pipeline);
    if (broker) api->broker_destroy(broker);
    return reconciled && !s.value("failed", false) ? 0 : 1;
}

iots_log_level_t parse_level(const std::string &name) {
    static const std::map<std::string, iots_log_level_t> levels = {
        {"trace", IOTS_LOG_TRACE}, {"debug", IOTS_LOG_DEBUG}, {"info", IOTS_LOG_INFO},
        {"warn", IOTS_LOG_WARN},   {"error", IOTS_LOG_ERROR}, {"off", IOTS_LOG_OFF}};
    auto it = levels.find(name);
    if (it == levels.end()) die("--log-level must be trace, debug, info, warn, error or off");
    return it->second;
}

}  // namespace

int main(int argc, char **argv) {
    Options options = parse_options(argc, argv);
    start_signal_thread();
    api = load_library(options);
    api->log_set_level(parse_level(options.log_level));
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (options.command == "plugins") return command_plugins(options);
    if (options.command == "produce") return command_produce(options);
    if (options.command == "gateway") return command_gateway(options);
    if (options.command == "devices") return command_devices(options);
    return command_run(options);
}
