// Names and numbers that several parts of iotstream share; one place for each.
#pragma once

namespace iotstream {

inline constexpr const char *kTopicReadings = "iot-readings";
inline constexpr const char *kTopicWindows = "iot-windows";
inline constexpr const char *kTopicAggregates = "iot-aggregates";
inline constexpr const char *kTopicAlerts = "iot-alerts";
inline constexpr const char *kTopicDeadLetter = "iot-dlq";
inline constexpr const char *kDefaultTopics[] = {kTopicReadings, kTopicWindows, kTopicAggregates,
                                                 kTopicAlerts, kTopicDeadLetter};
inline constexpr int kDefaultPartitions = 8;

}  // namespace iotstream
