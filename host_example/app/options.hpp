// iotstream-host's command line: the flags of every command, parsed once into Options.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "gateway/gateway.hpp"
#include "iotstream/iotstream.h"

namespace iotstream_host {

struct Options {
    std::string command = "run";
    bool help = false;  // --help: printed by main() once the library can say the defaults
    double duration_s = 60;
    bool duration_given = false;
    double rate = 20000;
    uint64_t count = 0;
    uint64_t sensors = 100000;
    double anomaly_share = 0.01;
    uint64_t seed = 1;
    int threads = 2;
    // Unset: the plugin's own default (its descriptor; --help prints it from there).
    std::optional<int> window_size_s;
    std::optional<int> grace_s;
    std::optional<int> idle_timeout_ms;
    std::optional<int> aggregate_interval_ms;
    std::string plugins;
    std::string config_file;
    std::string bootstrap;
    int partitions = 0;          // 0: the core's default (iots_defaults_json), set by main()
    std::string group = "iotstream-host";
    std::string input_topic;     // "": the core's readings topic, set by main()
    bool generate = true;
    bool bounded = false;
    double run_for_s = 0;
    std::string on_stop;  // "resume" | "close" | "" (the default for the broker in use)
    std::string guarantee;  // "at_least_once" | "exactly_once" | "" (the config file's, else at least once)
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

// The value of the last --library flag, or "": read before the library is loaded (and so
// before parse_options(), which needs the library for integer flags).
std::string library_flag(int argc, char **argv);
// Parses argv (the library loaded); prints --help and exits 0, or names a bad flag and exits 2.
Options parse_options(int argc, char **argv);

// The --help text; the defaults that the core or a plugin owns (written "@{window.size_s}",
// "@{topics.readings}", "@{partitions}") are filled in by default_of.
std::string usage(const std::function<std::string(const std::string &)> &default_of);

iots_log_level_t parse_level(const std::string &name);

// Names the problem on stderr and exits 2: the host's answer to a bad flag or a failed start.
[[noreturn]] void die(const std::string &message);

}  // namespace iotstream_host
