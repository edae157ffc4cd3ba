#include "app/job.hpp"

#include <fstream>

#include "app/library.hpp"

namespace iotstream_host {

using Json = nlohmann::json;

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

std::string start_broker(const Options &o, const Json &file, iots_broker_t **broker) {
    if (!o.bootstrap.empty()) return o.bootstrap;
    char errstr[1024];
    Json broker_config = file.value("broker", Json::object());
    if (!broker_config.contains("topics")) {
        broker_config["topics"] = Json::array();
        for (const auto &[name, topic] : core_defaults()["topics"].items())
            broker_config["topics"].push_back({{"name", topic}, {"partitions", o.partitions}});
        if (o.input_topic != core_topic("readings"))
            broker_config["topics"].push_back({{"name", o.input_topic}, {"partitions", o.partitions}});
    }
    check(api->broker_new(broker_config.dump().c_str(), broker, errstr, sizeof errstr), errstr,
          "starting the embedded broker");
    std::string bootstrap = api->broker_bootstrap(*broker);
    std::printf("embedded Kafka broker at %s\n", bootstrap.c_str());
    return bootstrap;
}

Json pipeline_config(const Options &o, const Json &file, const std::string &bootstrap, bool embedded_broker) {
    Json config = file.value("pipeline", Json::object());
    config["kafka"]["bootstrap.servers"] = bootstrap;
    config["input"]["topics"] = {o.input_topic};
    config["input"]["group_id"] = o.group;
    // Stop semantics (docs/pipeline.md, "Stopping"): the flag, else the file, else by broker.
    Json &stop = config["stop"];
    if (stop.is_null()) stop = Json::object();
    if (!stop.is_object()) die("--config: pipeline.stop must be an object, e.g. {\"close_windows\": false}");
    if (!o.on_stop.empty())
        stop["close_windows"] = o.on_stop == "close";
    else if (!stop.contains("close_windows"))
        stop["close_windows"] = embedded_broker;
    if (!o.guarantee.empty()) config["processing"]["guarantee"] = o.guarantee;
    if (!o.plugins.empty()) config["plugins"]["dir"] = o.plugins;
    if (!config.contains("stages")) {
        // The core's default stages; a flag sets its key, the rest keep the plugin's default.
        config["stages"] = core_defaults()["stages"];
        for (Json &stage : config["stages"]) {
            auto set = [&](const char *plugin, const char *key, const std::optional<int> &flag) {
                if (flag && stage.value("plugin", "") == plugin) stage["config"][key] = *flag;
            };
            set("aggregate", "interval_ms", o.aggregate_interval_ms);
            set("window", "size_s", o.window_size_s);
            set("window", "grace_s", o.grace_s);
            set("window", "idle_timeout_ms", o.idle_timeout_ms);
        }
    }
    return config;
}

}  // namespace iotstream_host
