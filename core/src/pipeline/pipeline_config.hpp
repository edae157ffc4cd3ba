// The pipeline document (docs/pipeline.md), parsed and checked into PipelineConfig.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/config.hpp"

namespace iotstream {

struct StageSpec {
    std::string plugin;
    Json config;
};

// A sink (plugin.h "Sinks"): the plugin, its config, the outputs it receives.
struct SinkSpec {
    std::string plugin;
    Json config;
    std::vector<std::string> outputs;
    size_t max_batch = 0;  // records per batch handed to the sink
    size_t max_queued_batches = 0;  // unacknowledged batches at which the input is held back
};

// Everything a pipeline document says (docs/pipeline.md). Defaults and ranges of every key are
// in the key table (common/config_keys.cpp), not here: only from_json() makes one.
struct PipelineConfig {
    KafkaProperties kafka;
    std::vector<std::string> input_topics;
    std::string group_id;
    std::string auto_offset_reset;       // where a group without commits starts
    Json decoder;                        // DecoderSchema document
    std::vector<StageSpec> stages;       // in execution order
    std::vector<SinkSpec> sinks;
    std::map<std::string, Json> rule_configs;  // config of rule plugins not listed in stages
    std::map<std::string, std::string, std::less<>> outputs;  // output name -> topic
    std::filesystem::path plugin_dir;
    bool watch_plugins = false;
    int commit_interval_ms = 0;
    size_t max_batch = 0;
    int poll_timeout_ms = 0;
    Json producer;                       // producer config overrides
    Json consumer;                       // consumer "kafka" overrides
    // Bounded (replay) mode: where to start.
    std::string bounded_start;               // "earliest" | "committed"
    int64_t bounded_start_time_ms = -1;      // >= 0: start at the first record at/after this time
    int64_t bounded_start_offset = -1;       // >= 0: start every partition at this offset
    // Limits (docs/pipeline.md, "Limits"). -1 (null): half the producer's message.max.bytes, at most 512 KiB.
    int64_t dead_letter_max_bytes = -1;
    // Distinct sensors with open state (held by a stage) per input partition; a reading of a new
    // sensor over it is dead-lettered as too_many_sensors. 0: no limit.
    int64_t max_open_sensors_per_partition = 0;
    // What stop() does with open windows when its caller leaves it to the configuration
    // (IOTS_STOP_AS_CONFIGURED): false (default) leaves them to the partition's next owner.
    bool close_windows_on_stop = false;
    // processing.guarantee: "at_least_once" (default) or "exactly_once" (transactions.cpp): the
    // output producer is transactional and each commit epoch is one transaction holding its
    // outputs, dead letters and the consumed offsets with their restore points.
    bool exactly_once = false;
    // processing.transactional_id: the output producer's transactional.id in exactly_once mode;
    // "" derives a unique one per pipeline from the group id (transactions.cpp).
    std::string transactional_id;

    static PipelineConfig from_json(const Json &document);
};

// Merges a "kafka" section over the pipeline's shared one into a client config object.
Json client_config(const Json &overrides, const KafkaProperties &shared, const std::string &what);

}  // namespace iotstream
