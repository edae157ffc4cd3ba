#include "app/options.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <stdexcept>

#include "app/library.hpp"
#include "mqtt/mqtt_ingest.hpp"

namespace iotstream_host {

namespace {

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
  --window-size SECONDS   tumbling window length (default @{window.size_s}; try 10 for a short demo)
  --grace SECONDS         how late a reading may arrive and still count (default @{window.grace_s})
  --idle-timeout MS       close windows of a quiet partition after this (default @{window.idle_timeout_ms})
  --aggregate-interval MS emit per-sensor aggregates this often (default @{aggregate.interval_ms})
  --plugins DIR           plugin folder, watched for new rule plugins (default: built-in)
  --via mqtt|http         the devices send through the gateway instead of the generator
                          producing to Kafka: mqtt publishes to --mqtt (default: a mosquitto
                          of our own, --mqtt start), http posts to the gateway's server
  --config FILE           JSON: {"pipeline": {...}, "loadgen": {...}, "broker": {...},
                          "ingest": {...}} (ingest: iots_ingest_new's keys, e.g. "devices");
                          flags override it
Kafka:
  --bootstrap HOST:PORT   use this cluster instead of starting an embedded broker
  --partitions N          partitions of the embedded broker's topics (default @{partitions})
  --group ID              consumer group (default iotstream-host)
  --input-topic NAME      read this topic (default @{topics.readings})
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
  --guarantee at_least_once|exactly_once  processing.guarantee: exactly_once commits each
                          epoch's outputs with its offsets in one Kafka transaction
                          (docs/pipeline.md#exactly-once); default at_least_once
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

double parse_number(const std::string &flag, const std::string &text, double min) {
    char *end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(value) || value < min)
        die(flag + " needs a number >= " + std::to_string(min) + ", got '" + text + "'");
    return value;
}

}  // namespace

std::string usage(const std::function<std::string(const std::string &)> &default_of) {
    std::string text = std::string(kUsage) + iotstream_host::gateway::kGatewayUsage + iotstream_host::mqtt::kMqttUsage;
    // "@{owner.key}" stands for a default the core or a plugin owns (default_of says it).
    std::string out;
    for (size_t at = 0;;) {
        size_t open = text.find("@{", at), close = open == std::string::npos ? open : text.find('}', open);
        if (close == std::string::npos) return out + text.substr(at);
        out += text.substr(at, open - at) + default_of(text.substr(open + 2, close - open - 2));
        at = close + 1;
    }
}

[[noreturn]] void die(const std::string &message) {
    std::fprintf(stderr, "iotstream-host: %s\n", message.c_str());
    std::exit(2);
}

std::string library_flag(int argc, char **argv) {
    std::string library;
    for (int i = 1; i + 1 < argc; ++i)
        if (std::string(argv[i]) == "--library") library = argv[++i];
    return library;
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
        // Integer flags go through the core's one rule (iots_parse_int): a value out of range
        // or with a fraction is refused by name, never wrapped or truncated.
        auto integer = [&](int64_t min, int64_t max = INT32_MAX) {
            try {
                return integer_flag(flag, value(), min, max);
            } catch (const std::runtime_error &e) {
                die(e.what());
            }
        };
        if (flag == "--help" || flag == "-h") {
            o.help = true;  // the other flags still count (--library, --plugins)
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
        else if (flag == "--guarantee") {
            o.guarantee = value();
            if (o.guarantee != "at_least_once" && o.guarantee != "exactly_once")
                die("--guarantee must be at_least_once or exactly_once");
        }
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

iots_log_level_t parse_level(const std::string &name) {
    static const std::map<std::string, iots_log_level_t> levels = {
        {"trace", IOTS_LOG_TRACE}, {"debug", IOTS_LOG_DEBUG}, {"info", IOTS_LOG_INFO},
        {"warn", IOTS_LOG_WARN},   {"error", IOTS_LOG_ERROR}, {"off", IOTS_LOG_OFF}};
    auto it = levels.find(name);
    if (it == levels.end()) die("--log-level must be trace, debug, info, warn, error or off");
    return it->second;
}

}  // namespace iotstream_host
