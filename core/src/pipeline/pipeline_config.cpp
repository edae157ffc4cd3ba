#include "pipeline/pipeline_config.hpp"

#include "common/config_keys.hpp"
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
    Json topics = read_key_json(in, "input.topics");
    if (!topics.is_array() || topics.empty())
        throw Error(IOTS_ERR_CONFIG, "pipeline config: input: key 'topics' must be a non-empty array of names");
    for (const Json &t : topics) {
        if (!t.is_string() || t.get<std::string>().empty())
            throw Error(IOTS_ERR_CONFIG, "pipeline config: input: every topic must be a non-empty string, got " + t.dump());
        c.input_topics.push_back(t.get<std::string>());
    }
    c.group_id = read_key_string(in, "input.group_id");
    c.auto_offset_reset = read_key_string(in, "input.auto_offset_reset");
    c.max_batch = static_cast<size_t>(read_key_int(in, "input.max_batch"));
    c.poll_timeout_ms = static_cast<int>(read_key_int(in, "input.poll_timeout_ms"));
    c.bounded_start = read_key_string(in, "input.start");
    if (c.bounded_start != "earliest" && c.bounded_start != "committed")
        throw Error(IOTS_ERR_CONFIG, "pipeline config: input: key 'start' must be \"earliest\" or \"committed\", got \"" +
                                         c.bounded_start + "\"");
    c.bounded_start_time_ms = read_key_int(in, "input.start_time_ms");
    c.bounded_start_offset = read_key_int(in, "input.start_offset");
    if (c.bounded_start_time_ms >= 0 && c.bounded_start_offset >= 0)
        throw Error(IOTS_ERR_CONFIG, "pipeline config: input: give 'start_offset' or 'start_time_ms', not both");
    in.finish();

    c.decoder = r.get_json("decoder", Json::object());  // read by DecoderSchema::from_json

    Json stages = read_key_json(r, "stages");
    if (!stages.is_array()) throw Error(IOTS_ERR_CONFIG, "pipeline config: key 'stages' must be an array");
    for (const Json &stage : stages) {
        if (!stage.is_object())
            throw Error(IOTS_ERR_CONFIG, "pipeline config: each stage must be an object {\"plugin\": name, \"config\": {...}}, got " + stage.dump());
        ConfigReader s(stage, "pipeline config: stage");
        StageSpec spec{read_key_string(s, "stages[].plugin"), read_key_json(s, "stages[].config")};
        s.finish();
        if (spec.plugin.empty()) throw Error(IOTS_ERR_CONFIG, "pipeline config: a stage has no 'plugin' name");
        for (const StageSpec &other : c.stages)
            if (other.plugin == spec.plugin)
                throw Error(IOTS_ERR_CONFIG, "pipeline config: stage '" + spec.plugin + "' is listed twice");
        c.stages.push_back(std::move(spec));
    }

    Json rules = read_key_json(r, "rules");
    if (!rules.is_object()) throw Error(IOTS_ERR_CONFIG, "pipeline config: key 'rules' must be an object {plugin: config}");
    for (auto &[name, value] : rules.items()) c.rule_configs[name] = value;

    const Json default_outputs = key_default("outputs");
    for (auto &[name, value] : default_outputs.items()) c.outputs[name] = value.get<std::string>();
    Json outputs = r.get_json("outputs", Json::object());  // given entries replace or add to the defaults
    if (!outputs.is_object()) throw Error(IOTS_ERR_CONFIG, "pipeline config: key 'outputs' must be an object {output: topic}");
    for (auto &[name, value] : outputs.items()) {
        if (!value.is_string() || value.get<std::string>().empty())
            throw Error(IOTS_ERR_CONFIG, "pipeline config: outputs: '" + name + "' must name a topic");
        c.outputs[name] = value.get<std::string>();
    }

    Json sinks = read_key_json(r, "sinks");
    if (!sinks.is_array()) throw Error(IOTS_ERR_CONFIG, "pipeline config: key 'sinks' must be an array");
    for (const Json &sink : sinks) {
        if (!sink.is_object())
            throw Error(IOTS_ERR_CONFIG, "pipeline config: each sink must be an object {\"plugin\": name, \"config\": "
                                         "{...}, \"outputs\": [...]}, got " + sink.dump());
        ConfigReader s(sink, "pipeline config: sink");
        SinkSpec spec{read_key_string(s, "sinks[].plugin"), read_key_json(s, "sinks[].config"), {}};
        if (spec.plugin.empty()) throw Error(IOTS_ERR_CONFIG, "pipeline config: a sink has no 'plugin' name");
        const std::string where = "pipeline config: sink '" + spec.plugin + "': ";
        Json outs = read_key_json(s, "sinks[].outputs");
        if (!outs.is_array() || outs.empty())
            throw Error(IOTS_ERR_CONFIG, where + "key 'outputs' must be a non-empty array of output names");
        for (const Json &o : outs) {
            if (!o.is_string() || !c.outputs.count(o.get<std::string>()))
                throw Error(IOTS_ERR_CONFIG, where + "key 'outputs': " + o.dump() +
                                                 " is not an output of this pipeline (see 'outputs')");
            spec.outputs.push_back(o.get<std::string>());
        }
        spec.max_batch = static_cast<size_t>(read_key_int(s, "sinks[].max_batch"));
        spec.max_queued_batches = static_cast<size_t>(read_key_int(s, "sinks[].max_queued_batches"));
        s.finish();
        for (const SinkSpec &other : c.sinks)
            if (other.plugin == spec.plugin)
                throw Error(IOTS_ERR_CONFIG, "pipeline config: sink '" + spec.plugin + "' is listed twice");
        c.sinks.push_back(std::move(spec));
    }

    Json plugins = r.get_json("plugins", Json::object());
    ConfigReader p(plugins, "pipeline config: plugins");
    std::string dir = read_key_string(p, "plugins.dir");
    c.plugin_dir = dir.empty() ? default_plugin_dir() : std::filesystem::path(dir);
    c.watch_plugins = read_key_bool(p, "plugins.watch");
    p.finish();

    Json limits = r.get_json("limits", Json::object());
    ConfigReader l(limits, "pipeline config: limits");
    c.dead_letter_max_bytes = read_key_optional_int(l, "limits.dead_letter_max_bytes").value_or(-1);
    c.max_open_sensors_per_partition = read_key_int(l, "limits.max_open_sensors_per_partition");
    l.finish();

    Json stop = r.get_json("stop", Json::object());
    ConfigReader st(stop, "pipeline config: stop");
    c.close_windows_on_stop = read_key_bool(st, "stop.close_windows");
    st.finish();

    Json processing = r.get_json("processing", Json::object());
    ConfigReader pr(processing, "pipeline config: processing");
    std::string guarantee = read_key_string(pr, "processing.guarantee");
    if (guarantee != "at_least_once" && guarantee != "exactly_once")
        throw Error(IOTS_ERR_CONFIG, "pipeline config: processing: key 'guarantee' must be \"at_least_once\" or "
                                     "\"exactly_once\", got \"" + guarantee + "\"");
    c.exactly_once = guarantee == "exactly_once";
    c.transactional_id = read_key_string(pr, "processing.transactional_id");
    pr.finish();
    if (!c.transactional_id.empty() && !c.exactly_once)
        throw Error(IOTS_ERR_CONFIG, "pipeline config: processing: 'transactional_id' needs \"guarantee\": \"exactly_once\"");

    c.commit_interval_ms = static_cast<int>(read_key_int(r, "commit_interval_ms"));
    c.producer = read_key_json(r, "producer");
    c.consumer = read_key_json(r, "consumer");
    r.finish();
    return c;
}

}  // namespace iotstream
