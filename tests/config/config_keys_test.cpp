// The pipeline key table (common/config_keys.cpp) is the one source of the pipeline document's
// defaults and ranges: the config readers take them from it, iots_defaults_json() publishes it.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "common/config_keys.hpp"
#include "common/defaults.hpp"
#include "decode/decoder.hpp"
#include "iotstream/iotstream.h"
#include "pipeline/pipeline_config.hpp"

namespace iotstream {
namespace {

// The document with `path` (a dotted path without "[]") set to `value`.
Json with_key(std::string_view path, const Json &value) {
    Json document = Json::object();
    Json *at = &document;
    size_t start = 0;
    for (size_t dot = path.find('.'); dot != std::string_view::npos; dot = path.find('.', start)) {
        at = &(*at)[std::string(path.substr(start, dot - start))];
        start = dot + 1;
    }
    (*at)[std::string(path.substr(start))] = value;
    return document;
}

bool is_element_key(std::string_view path) { return path.find("[]") != std::string_view::npos; }

// What a pipeline does with its document before it starts: the document, then its decoder.
void parse(const Json &document) {
    const PipelineConfig c = PipelineConfig::from_json(document);
    DecoderSchema::from_json(c.decoder, "pipeline config: decoder");
}

TEST(PipelineKeys, EveryEntryIsWellFormed) {
    std::set<std::string> paths;
    for (const CoreConfigKey &entry : pipeline_keys()) {
        const std::string path = entry.key.name;
        SCOPED_TRACE(path);
        EXPECT_TRUE(paths.insert(path).second) << "listed twice";
        ASSERT_NE(entry.key.help, nullptr);
        EXPECT_GT(std::string(entry.key.help).size(), 10u);
        if (entry.key.default_json == nullptr) {
            EXPECT_TRUE(is_element_key(path)) << "only an element's key can be required";
            continue;
        }
        const Json fallback = Json::parse(entry.key.default_json);  // throws if it is not JSON
        switch (entry.key.type) {
        case IOTS_CONFIG_INT:
            EXPECT_LE(entry.min, entry.max);
            if (!fallback.is_null()) {
                ASSERT_TRUE(fallback.is_number_integer());
                EXPECT_GE(fallback.get<int64_t>(), entry.min);
                EXPECT_LE(fallback.get<int64_t>(), entry.max);
            }
            break;
        case IOTS_CONFIG_BOOL: EXPECT_TRUE(fallback.is_boolean()); break;
        case IOTS_CONFIG_STRING: EXPECT_TRUE(fallback.is_string()); break;
        case IOTS_CONFIG_JSON: EXPECT_TRUE(fallback.is_object() || fallback.is_array()); break;
        default: ADD_FAILURE() << "unexpected type " << entry.key.type;
        }
    }
    EXPECT_THROW(pipeline_key("input.no_such_key"), Error);
}

// Every top-level and section key of the table is one the parser reads (no "unknown key"), and
// giving each its default explicitly is accepted.
TEST(PipelineKeys, TheParserReadsEveryKeyOfTheTable) {
    for (const CoreConfigKey &entry : pipeline_keys()) {
        const std::string path = entry.key.name;
        if (is_element_key(path) || std::string(entry.key.default_json) == "null") continue;
        SCOPED_TRACE(path);
        EXPECT_NO_THROW(parse(with_key(path, key_default(path))));
    }
    // The keys of each stage and sink element, all given.
    Json stage = {{"plugin", "window"}, {"config", key_default("stages[].config")}};
    Json sink = {{"plugin", "s"}, {"config", key_default("sinks[].config")},
                 {"outputs", key_default("sinks[].outputs")}, {"max_batch", key_default("sinks[].max_batch")},
                 {"max_queued_batches", key_default("sinks[].max_queued_batches")}};
    EXPECT_NO_THROW(parse({{"stages", {stage}}, {"sinks", {sink}}}));
    EXPECT_NO_THROW(parse(with_key("limits.dead_letter_max_bytes", 65536)));
}

// Each int key's range is the table's: its ends are accepted, one past them refused by name.
TEST(PipelineKeys, IntegerRangesComeFromTheTable) {
    for (const CoreConfigKey &entry : pipeline_keys()) {
        if (entry.key.type != IOTS_CONFIG_INT) continue;
        const std::string path = entry.key.name;
        SCOPED_TRACE(path);
        auto document = [&](int64_t value) {
            if (path.starts_with("sinks[].")) return Json{{"sinks", {{{"plugin", "s"}, {path.substr(8), value}}}}};
            return with_key(path, value);
        };
        const std::string name = path.substr(path.rfind('.') + 1);
        EXPECT_NO_THROW(parse(document(entry.min)));
        if (entry.max < INT64_MAX) {
            EXPECT_NO_THROW(parse(document(entry.max)));
        }
        try {
            parse(document(entry.min - 1));
            ADD_FAILURE() << "min - 1 accepted";
        } catch (const Error &e) {
            EXPECT_NE(std::string(e.what()).find("'" + name + "'"), std::string::npos) << e.what();
        }
        if (entry.max < INT64_MAX) {
            EXPECT_THROW(parse(document(entry.max + 1)), Error);
        }
    }
}

TEST(PipelineKeys, AnEmptyDocumentGetsTheTablesDefaults) {
    const PipelineConfig c = PipelineConfig::from_json(Json::object());
    EXPECT_EQ(Json(c.input_topics), key_default("input.topics"));
    EXPECT_EQ(c.group_id, key_default("input.group_id"));
    EXPECT_EQ(c.auto_offset_reset, key_default("input.auto_offset_reset"));
    EXPECT_EQ(c.max_batch, key_default("input.max_batch").get<size_t>());
    EXPECT_EQ(c.poll_timeout_ms, key_default("input.poll_timeout_ms").get<int>());
    EXPECT_EQ(c.bounded_start, key_default("input.start"));
    EXPECT_EQ(c.bounded_start_offset, key_default("input.start_offset").get<int64_t>());
    EXPECT_EQ(c.bounded_start_time_ms, key_default("input.start_time_ms").get<int64_t>());
    ASSERT_EQ(c.stages.size(), key_default("stages").size());
    for (size_t i = 0; i < c.stages.size(); ++i) EXPECT_EQ(c.stages[i].plugin, key_default("stages")[i]["plugin"]);
    EXPECT_EQ(Json(c.outputs), key_default("outputs"));
    EXPECT_TRUE(c.sinks.empty());
    EXPECT_EQ(c.watch_plugins, key_default("plugins.watch").get<bool>());
    EXPECT_EQ(c.dead_letter_max_bytes, -1);  // null: computed from the producer's message.max.bytes
    EXPECT_EQ(c.max_open_sensors_per_partition, key_default("limits.max_open_sensors_per_partition").get<int64_t>());
    EXPECT_EQ(c.close_windows_on_stop, key_default("stop.close_windows").get<bool>());
    EXPECT_EQ(c.commit_interval_ms, key_default("commit_interval_ms").get<int>());

    const PipelineConfig with_sink = PipelineConfig::from_json({{"sinks", {{{"plugin", "s"}}}}});
    EXPECT_EQ(Json(with_sink.sinks.at(0).outputs), key_default("sinks[].outputs"));
    EXPECT_EQ(with_sink.sinks.at(0).max_batch, key_default("sinks[].max_batch").get<size_t>());

    const DecoderSchema schema = DecoderSchema::defaults();
    EXPECT_EQ(Json(schema.fields), key_default("decoder.fields"));
    EXPECT_EQ(schema.max_record_bytes, key_default("decoder.max_record_bytes").get<size_t>());
    EXPECT_EQ(schema.max_sensor_id_bytes, key_default("decoder.max_sensor_id_bytes").get<size_t>());
    Json required = Json::array();
    for (size_t f = 0; f < schema.fields.size(); ++f)
        if (schema.required[f]) required.push_back(schema.fields[f]);
    EXPECT_EQ(required, key_default("decoder.required"));
}

TEST(DefaultsJson, PublishesTopicsStagesAndEveryKey) {
    const char *text = iots_defaults_json();
    ASSERT_NE(text, nullptr);
    EXPECT_EQ(text, iots_defaults_json());  // static storage
    const Json doc = Json::parse(text);
    EXPECT_EQ(doc["topics"]["readings"], kTopicReadings);
    EXPECT_EQ(doc["topics"]["dlq"], kTopicDeadLetter);
    EXPECT_EQ(doc["topics"].size(), std::size(kDefaultTopics));
    EXPECT_EQ(doc["partitions"], kDefaultPartitions);
    EXPECT_EQ(doc["stages"], key_default("stages"));
    ASSERT_EQ(doc["keys"].size(), pipeline_keys().size());
    for (size_t i = 0; i < pipeline_keys().size(); ++i) {
        const CoreConfigKey &entry = pipeline_keys()[i];
        const Json &key = doc["keys"][i];
        EXPECT_EQ(key["path"], entry.key.name);
        EXPECT_EQ(key["type"], config_type_name(entry.key.type));
        EXPECT_EQ(key["default"], key_default(entry.key.name));
        EXPECT_EQ(key["required"], entry.key.default_json == nullptr);
        EXPECT_EQ(key["help"], entry.key.help);
        EXPECT_EQ(key.contains("min"), entry.key.type == IOTS_CONFIG_INT);
    }
    // The default outputs are the topics' output names.
    const Json outputs = key_default("outputs");
    for (auto &[output, topic] : outputs.items()) EXPECT_EQ(doc["topics"][output], topic);
}

}  // namespace
}  // namespace iotstream
