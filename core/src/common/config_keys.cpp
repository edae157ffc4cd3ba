#include "common/config_keys.hpp"

#include "common/defaults.hpp"

namespace iotstream {

namespace {

#define IOTSTREAM_DEFAULT_STAGES "[{\"plugin\": \"anomaly\"}, {\"plugin\": \"aggregate\"}, {\"plugin\": \"window\"}]"
#define IOTSTREAM_DEFAULT_FIELDS \
    "[\"temperature\", \"humidity\", \"pressure\", \"battery_level\", \"location.lat\", \"location.lon\"]"

constexpr int64_t kNoMax = INT64_MAX;

// The pipeline document, key by key (docs/pipeline.md's key table is generated from this).
// Help is one line, for --help, notebooks and the docs.
constexpr CoreConfigKey kPipelineKeys[] = {
    {{"kafka", IOTS_CONFIG_JSON, "{}",
      "librdkafka properties for both clients, with librdkafka's own names (also as flat \"kafka.NAME\" keys)"}},
    {{"input.topics", IOTS_CONFIG_JSON, "[\"" IOTSTREAM_TOPIC_READINGS "\"]", "the topics to read (a non-empty array)"}},
    {{"input.group_id", IOTS_CONFIG_STRING, "\"iotstream-pipeline\"", "the consumer group to read as"}},
    {{"input.auto_offset_reset", IOTS_CONFIG_STRING, "\"earliest\"", "where a group without commits starts"}},
    {{"input.max_batch", IOTS_CONFIG_INT, "10000", "records per poll, i.e. per batch the stages see"}, 1, 1000000},
    {{"input.poll_timeout_ms", IOTS_CONFIG_INT, "100", "longest wait of one poll for records"}, 1, 10000},
    {{"input.start", IOTS_CONFIG_STRING, "\"earliest\"",
      "bounded runs only: where each partition starts, \"earliest\" or \"committed\""}},
    {{"input.start_offset", IOTS_CONFIG_INT, "-1",
      "bounded runs only: every partition from this offset (-1: as input.start says)"}, -1, kNoMax},
    {{"input.start_time_ms", IOTS_CONFIG_INT, "-1",
      "bounded runs only: from the first record whose Kafka timestamp is at/after this time (epoch ms; -1: as "
      "input.start says); where the broker cannot look the time up, older records are read and skipped, counted "
      "as skipped_before_start; not together with input.start_offset"}, -1, kNoMax},
    {{"decoder.fields", IOTS_CONFIG_JSON, IOTSTREAM_DEFAULT_FIELDS,
      "numeric fields (dotted paths under \"data\") that become batch columns"}},
    {{"decoder.required", IOTS_CONFIG_JSON, "[\"temperature\", \"humidity\", \"pressure\"]",
      "fields every reading must have (missing_field); when absent, those of the defaults that are in fields"}},
    {{"decoder.max_record_bytes", IOTS_CONFIG_INT, "65536", "larger records are dead-lettered as too_large"}, 64,
     int64_t{1} << 26},
    {{"decoder.max_sensor_id_bytes", IOTS_CONFIG_INT, "256",
      "a longer sensor_id (in bytes after unescaping) is dead-lettered as sensor_id_too_long"}, 1, int64_t{1} << 26},
    {{"stages", IOTS_CONFIG_JSON, IOTSTREAM_DEFAULT_STAGES,
      "the stage plugins in execution order, each {\"plugin\": name, \"config\": {...}}"}},
    {{"stages[].plugin", IOTS_CONFIG_STRING, nullptr, "the stage's plugin (each at most once)"}},
    {{"stages[].config", IOTS_CONFIG_JSON, "{}", "the stage's config, validated against the plugin's key table"}},
    {{"rules", IOTS_CONFIG_JSON, "{}",
      "config of rule plugins that are in the folder but not listed in stages: {plugin: config}"}},
    {{"outputs", IOTS_CONFIG_JSON,
      "{\"windows\": \"" IOTSTREAM_TOPIC_WINDOWS "\", \"aggregates\": \"" IOTSTREAM_TOPIC_AGGREGATES
      "\", \"alerts\": \"" IOTSTREAM_TOPIC_ALERTS "\", \"dlq\": \"" IOTSTREAM_TOPIC_DEAD_LETTER "\"}",
      "output name (what plugins emit to) to topic; the entries given replace or add to these"}},
    {{"sinks", IOTS_CONFIG_JSON, "[]",
      "sink plugins, each {\"plugin\": name, \"config\": {...}, \"outputs\": [...], \"max_batch\": n}"}},
    {{"sinks[].plugin", IOTS_CONFIG_STRING, nullptr, "the sink's plugin (each at most once)"}},
    {{"sinks[].config", IOTS_CONFIG_JSON, "{}", "the sink's config, validated against the plugin's key table"}},
    {{"sinks[].outputs", IOTS_CONFIG_JSON, "[\"windows\", \"aggregates\", \"alerts\"]",
      "the outputs the sink receives, each an output of this pipeline"}},
    {{"sinks[].max_batch", IOTS_CONFIG_INT, "1000", "records per batch handed to the sink"}, 1, 1000000},
    {{"sinks[].max_queued_batches", IOTS_CONFIG_INT, "16",
      "batches handed to the sink and not acknowledged at which the input is held back (docs/sinks.md#backpressure)"},
     1, 1000000},
    {{"plugins.dir", IOTS_CONFIG_STRING, "\"\"",
      "the plugin folder; \"\": $IOTSTREAM_PLUGIN_DIR, else the library's own plugin folder"}},
    {{"plugins.watch", IOTS_CONFIG_BOOL, "true", "whether to watch the plugin folder for new and replaced plugins"}},
    {{"limits.dead_letter_max_bytes", IOTS_CONFIG_INT, "null",
      "the largest dead letter (key + value + headers); larger ones keep a prefix; null: half the producer's "
      "message.max.bytes, at most 512 KiB; never above message.max.bytes"}, static_cast<int64_t>(kMinDeadLetterBytes),
     int64_t{1} << 30},
    {{"limits.max_open_sensors_per_partition", IOTS_CONFIG_INT, "200000",
      "distinct sensors with open state per input partition (0: no limit); a reading of a new sensor beyond it "
      "is dead-lettered as too_many_sensors"}, 0, int64_t{1} << 31},
    {{"stop.close_windows", IOTS_CONFIG_BOOL, "false",
      "what a stop leaves to the partitions' next owner: false a resumable stop, true a closing one"}},
    {{"processing.guarantee", IOTS_CONFIG_STRING, "\"at_least_once\"",
      "\"at_least_once\" or \"exactly_once\": each commit epoch one Kafka transaction"}},
    {{"processing.transactional_id", IOTS_CONFIG_STRING, "\"\"",
      "exactly_once only: the output producer's transactional.id (\"\": one unique per pipeline, derived from the "
      "group id); a stable one per member fences its previous incarnation at once; producer.kafka.transactional.id "
      "is refused"}},
    {{"commit_interval_ms", IOTS_CONFIG_INT, "1000", "how often results are sealed and their offsets committed"}, 10,
     600000},
    {{"producer", IOTS_CONFIG_JSON, "{}",
      "output producer overrides: {\"kafka\": {...}, \"queue_full_timeout_ms\": n}; the pipeline's own librdkafka "
      "defaults (idempotence, linger.ms 2, batch.size 1000000, lz4): docs/pipeline.md#client-defaults"}},
    {{"consumer", IOTS_CONFIG_JSON, "{}",
      "consumer overrides: {\"kafka\": {...}}, e.g. the group timeouts session.timeout.ms (librdkafka's default "
      "45000; bounds how long a killed member's partitions wait), heartbeat.interval.ms, max.poll.interval.ms; the pipeline's own librdkafka defaults: "
      "docs/pipeline.md#client-defaults"}},
};

// The last name of a dotted path: the key within the object that holds it.
std::string key_name(std::string_view path) {
    const size_t dot = path.rfind('.');
    return std::string(dot == std::string_view::npos ? path : path.substr(dot + 1));
}

const CoreConfigKey &typed_key(std::string_view path, iots_config_type_t type) {
    const CoreConfigKey &entry = pipeline_key(path);
    if (entry.key.type != type)
        throw Error(IOTS_ERR_INTERNAL, "config key '" + std::string(path) + "' is a " +
                                           config_type_name(entry.key.type) + " key, read as " + config_type_name(type));
    return entry;
}

}  // namespace

std::span<const CoreConfigKey> pipeline_keys() { return kPipelineKeys; }

const CoreConfigKey &pipeline_key(std::string_view path) {
    for (const CoreConfigKey &entry : kPipelineKeys)
        if (path == entry.key.name) return entry;
    throw Error(IOTS_ERR_INTERNAL, "config key '" + std::string(path) + "' is not in the pipeline key table");
}

const char *config_type_name(iots_config_type_t type) {
    switch (type) {
    case IOTS_CONFIG_BOOL: return "bool";
    case IOTS_CONFIG_INT: return "int";
    case IOTS_CONFIG_DOUBLE: return "double";
    case IOTS_CONFIG_STRING: return "string";
    case IOTS_CONFIG_JSON: return "json";
    }
    return "unknown";
}

Json key_default(std::string_view path) {
    const CoreConfigKey &entry = pipeline_key(path);
    return entry.key.default_json ? Json::parse(entry.key.default_json) : Json();
}

int64_t read_key_int(ConfigReader &reader, std::string_view path) {
    const CoreConfigKey &entry = typed_key(path, IOTS_CONFIG_INT);
    return reader.get_int(key_name(path), key_default(path).get<int64_t>(), entry.min, entry.max);
}

std::optional<int64_t> read_key_optional_int(ConfigReader &reader, std::string_view path) {
    const CoreConfigKey &entry = typed_key(path, IOTS_CONFIG_INT);
    const std::string name = key_name(path);
    if (!reader.has(name)) {
        reader.get_json(name, Json());  // marks it read
        return std::nullopt;
    }
    return reader.get_int(name, 0, entry.min, entry.max);
}

std::string read_key_string(ConfigReader &reader, std::string_view path) {
    typed_key(path, IOTS_CONFIG_STRING);
    const Json fallback = key_default(path);
    return reader.get_string(key_name(path), fallback.is_string() ? fallback.get<std::string>() : std::string());
}

bool read_key_bool(ConfigReader &reader, std::string_view path) {
    typed_key(path, IOTS_CONFIG_BOOL);
    return reader.get_bool(key_name(path), key_default(path).get<bool>());
}

Json read_key_json(ConfigReader &reader, std::string_view path) {
    typed_key(path, IOTS_CONFIG_JSON);
    return reader.get_json(key_name(path), key_default(path));
}

const std::string &defaults_json() {
    static const std::string text = [] {
        Json keys = Json::array();
        for (const CoreConfigKey &entry : kPipelineKeys) {
            Json key = {{"path", entry.key.name},
                        {"type", config_type_name(entry.key.type)},
                        {"required", entry.key.default_json == nullptr},
                        {"default", key_default(entry.key.name)},
                        {"help", entry.key.help}};
            if (entry.key.type == IOTS_CONFIG_INT) {
                key["min"] = entry.min;
                key["max"] = entry.max;
            }
            keys.push_back(std::move(key));
        }
        const Json document = {
            {"topics", {{"readings", kTopicReadings}, {"windows", kTopicWindows}, {"aggregates", kTopicAggregates},
                        {"alerts", kTopicAlerts}, {"dlq", kTopicDeadLetter}}},
            {"partitions", kDefaultPartitions},
            {"stages", key_default("stages")},
            {"keys", std::move(keys)},
        };
        return document.dump();
    }();
    return text;
}

}  // namespace iotstream
