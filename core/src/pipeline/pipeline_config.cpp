#include "pipeline/pipeline_config.hpp"

#include "common/defaults.hpp"
#include "pipeline/dead_letter.hpp"
#include "plugin_host/plugin_loader.hpp"  // default_plugin_dir

namespace iotstream {

Json client_config(const Json &overrides, const KafkaProperties &shared, const std::string &what) {
    Json out = overrides.is_null() ? Json::object() : overrides;
    if (!out.is_object()) throw Error(IOTS_ERR_CONFIG, "pipeline config: key '" + what + "' must be an object");
    Json kafka = Json::object();
    for (auto &[name, value] : shared) kafka[name] = value;
    if (out.contains("kafka")) {
        if (!out["kafka"].is_object())
            throw Error(IOTS_ERR_CONFIG, "pipeline config: key '" + what + ".kafka' must be an object");
        for (auto &[name, value] : out["kafka"].items()) kafka[name] = value;
    }
    out["kafka"] = kafka;
    return out;
}

PipelineConfig PipelineConfig::from_json(const Json &document) {
    PipelineConfig c;
    ConfigReader r(document, "pipeline config");
    c.kafka = r.kafka_properties();

    Json input = r.get_json("input", Json::object());
    ConfigReader in(input, "pipeline config: input");
    Json topics = in.get_json("topics", Json::array({kTopicReadings}));
    if (!topics.is_array() || topics.empty())
        throw Error(IOTS_ERR_CONFIG, "pipeline config: input: key 'topics' must be a non-empty array of names");
    for (const Json &t : topics) {
        if (!t.is_string() || t.get<std::string>().empty())
            throw Error(IOTS_ERR_CONFIG, "pipeline config: input: every topic must be a non-empty string, got " + t.dump());
        c.input_topics.push_back(t.get<std::string>());
    }
    c.group_id = in.get_string("group_id", "iotstream-pipeline");
    c.auto_offset_reset = in.get_string("auto_offset_reset", "earliest");
    c.max_batch = static_cast<size_t>(in.get_int("max_batch", 10000, 1, 1000000));
    c.poll_timeout_ms = static_cast<int>(in.get_int("poll_timeout_ms", 100, 1, 10000));
    c.bounded_start = in.get_string("start", "earliest");
    if (c.bounded_start != "earliest" && c.bounded_start != "committed")
        throw Error(IOTS_ERR_CONFIG, "pipeline config: input: key 'start' must be \"earliest\" or \"committed\", got \"" +
                                         c.bounded_start + "\"");
    c.bounded_start_time_ms = in.get_int("start_time_ms", -1, -1, INT64_MAX);
    c.bounded_start_offset = in.get_int("start_offset", -1, -1, INT64_MAX);
    if (c.bounded_start_time_ms >= 0 && c.bounded_start_offset >= 0)
        throw Error(IOTS_ERR_CONFIG, "pipeline config: input: give 'start_offset' or 'start_time_ms', not both");
    in.finish();

    c.decoder = r.get_json("decoder", Json::object());

    Json stages = r.get_json("stages", Json::array({{{"plugin", "anomaly"}}, {{"plugin", "aggregate"}}, {{"plugin", "window"}}}));
    if (!stages.is_array()) throw Error(IOTS_ERR_CONFIG, "pipeline config: key 'stages' must be an array");
    for (const Json &stage : stages) {
        if (!stage.is_object())
            throw Error(IOTS_ERR_CONFIG, "pipeline config: each stage must be an object {\"plugin\": name, \"config\": {...}}, got " + stage.dump());
        ConfigReader s(stage, "pipeline config: stage");
        StageSpec spec{s.get_string("plugin", ""), s.get_json("config", Json::object())};
        s.finish();
        if (spec.plugin.empty()) throw Error(IOTS_ERR_CONFIG, "pipeline config: a stage has no 'plugin' name");
        for (const StageSpec &other : c.stages)
            if (other.plugin == spec.plugin)
                throw Error(IOTS_ERR_CONFIG, "pipeline config: stage '" + spec.plugin + "' is listed twice");
        c.stages.push_back(std::move(spec));
    }

    Json rules = r.get_json("rules", Json::object());
    if (!rules.is_object()) throw Error(IOTS_ERR_CONFIG, "pipeline config: key 'rules' must be an object {plugin: config}");
    for (auto &[name, value] : rules.items()) c.rule_configs[name] = value;

    c.outputs = {{"windows", kTopicWindows}, {"aggregates", kTopicAggregates},
                 {"alerts", kTopicAlerts}, {"dlq", kTopicDeadLetter}};
    Json outputs = r.get_json("outputs", Json::object());
    if (!outputs.is_object()) throw Error(IOTS_ERR_CONFIG, "pipeline config: key 'outputs' must be an object {output: topic}");
    for (auto &[name, value] : outputs.items()) {
        if (!value.is_string() || value.get<std::string>().empty())
            throw Error(IOTS_ERR_CONFIG, "pipeline config: outputs: '" + name + "' must name a topic");
        c.outputs[name] = value.get<std::string>();
    }

    Json sinks = r.get_json("sinks", Json::array());
    if (!sinks.is_array()) throw Error(IOTS_ERR_CONFIG, "pipeline config: key 'sinks' must be an array");
    for (const Json &sink : sinks) {
        if (!sink.is_object())
            throw Error(IOTS_ERR_CONFIG, "pipeline config: each sink must be an object {\"plugin\": name, \"config\": "
                                         "{...}, \"outputs\": [...]}, got " + sink.dump());
        ConfigReader s(sink, "pipeline config: sink");
        SinkSpec spec{s.get_string("plugin", ""), s.get_json("config", Json::object()), {}};
        if (spec.plugin.empty()) throw Error(IOTS_ERR_CONFIG, "pipeline config: a sink has no 'plugin' name");
        const std::string where = "pipeline config: sink '" + spec.plugin + "': ";
        Json outs = s.get_json("outputs", Json::array({"windows", "aggregates", "alerts"}));
        if (!outs.is_array() || outs.empty())
            throw Error(IOTS_ERR_CONFIG, where + "key 'outputs' must be a non-empty array of output names");
        for (const Json &o : outs) {
            if (!o.is_string() || !c.outputs.count(o.get<std::string>()))
                throw Error(IOTS_ERR_CONFIG, where + "key 'outputs': " + o.dump() +
                                                 " is not an output of this pipeline (see 'outputs')");
            spec.outputs.push_back(o.get<std::string>());
        }
        spec.max_batch = static_cast<size_t>(s.get_int("max_batch", 1000, 1, 1000000));
        s.finish();
        for (const SinkSpec &other : c.sinks)
            if (other.plugin == spec.plugin)
                throw Error(IOTS_ERR_CONFIG, "pipeline config: sink '" + spec.plugin + "' is listed twice");
        c.sinks.push_back(std::move(spec));
    }

    Json plugins = r.get_json("plugins", Json::object());
    ConfigReader p(plugins, "pipeline config: plugins");
    std::string dir = p.get_string("dir", "");
    c.plugin_dir = dir.empty() ? default_plugin_dir() : std::filesystem::path(dir);
    c.watch_plugins = p.get_bool("watch", true);
    p.finish();

    Json limits = r.get_json("limits", Json::object());
    ConfigReader l(limits, "pipeline config: limits");
    c.dead_letter_max_bytes =
        l.get_int("dead_letter_max_bytes", -1, static_cast<int64_t>(kMinDeadLetterBytes), int64_t{1} << 30);
    c.max_open_sensors_per_partition =
        l.get_int("max_open_sensors_per_partition", c.max_open_sensors_per_partition, 0, int64_t{1} << 31);
    l.finish();

    Json stop = r.get_json("stop", Json::object());
    ConfigReader st(stop, "pipeline config: stop");
    c.close_windows_on_stop = st.get_bool("close_windows", false);
    st.finish();

    Json processing = r.get_json("processing", Json::object());
    ConfigReader pr(processing, "pipeline config: processing");
    std::string guarantee = pr.get_string("guarantee", "at_least_once");
    if (guarantee != "at_least_once" && guarantee != "exactly_once")
        throw Error(IOTS_ERR_CONFIG, "pipeline config: processing: key 'guarantee' must be \"at_least_once\" or "
                                     "\"exactly_once\", got \"" + guarantee + "\"");
    c.exactly_once = guarantee == "exactly_once";
    c.transactional_id = pr.get_string("transactional_id", "");
    pr.finish();
    if (!c.transactional_id.empty() && !c.exactly_once)
        throw Error(IOTS_ERR_CONFIG, "pipeline config: processing: 'transactional_id' needs \"guarantee\": \"exactly_once\"");

    c.commit_interval_ms = static_cast<int>(r.get_int("commit_interval_ms", 1000, 10, 600000));
    c.producer = r.get_json("producer", Json::object());
    c.consumer = r.get_json("consumer", Json::object());
    r.finish();
    return c;
}

}  // namespace iotstream
