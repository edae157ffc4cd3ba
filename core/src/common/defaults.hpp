// Names and numbers that several parts of iotstream share; one place for each. Hosts, the
// bindings and the docs read them through iots_defaults_json() (common/config_keys.hpp).
#pragma once

#include <cstddef>

// As macros too, so that the key table's default_json texts are string literals built from them.
#define IOTSTREAM_TOPIC_READINGS "iot-readings"
#define IOTSTREAM_TOPIC_WINDOWS "iot-windows"
#define IOTSTREAM_TOPIC_AGGREGATES "iot-aggregates"
#define IOTSTREAM_TOPIC_ALERTS "iot-alerts"
#define IOTSTREAM_TOPIC_DEAD_LETTER "iot-dlq"

namespace iotstream {

inline constexpr const char *kTopicReadings = IOTSTREAM_TOPIC_READINGS;
inline constexpr const char *kTopicWindows = IOTSTREAM_TOPIC_WINDOWS;
inline constexpr const char *kTopicAggregates = IOTSTREAM_TOPIC_AGGREGATES;
inline constexpr const char *kTopicAlerts = IOTSTREAM_TOPIC_ALERTS;
inline constexpr const char *kTopicDeadLetter = IOTSTREAM_TOPIC_DEAD_LETTER;
inline constexpr const char *kDefaultTopics[] = {kTopicReadings, kTopicWindows, kTopicAggregates,
                                                 kTopicAlerts, kTopicDeadLetter};
inline constexpr int kDefaultPartitions = 8;

// The smallest limits.dead_letter_max_bytes: room for every dead-letter header at its longest.
inline constexpr size_t kMinDeadLetterBytes = 16384;

}  // namespace iotstream
