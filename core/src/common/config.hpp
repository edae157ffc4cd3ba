// JSON configuration documents: parsing, typed reads that name the offending key, rejection of
// unknown keys, and the "kafka" section handed verbatim to librdkafka.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>

#include <librdkafka/rdkafka.h>
#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace iotstream {

using Json = nlohmann::json;
using KafkaProperties = std::map<std::string, std::string>;

// Parses a configuration document; NULL or "" is an empty object. `what` names the document
// in error messages ("producer config").
Json parse_config(const char *text, const std::string &what);

// Whether a config key's name marks its value as a secret (password, secret, token, key.pem,
// jaas, credential, private): such values never appear in an error or a log line.
bool is_secret_key(std::string_view key);
// `value` as an error message may quote it: its JSON text, or only its type for a secret key.
std::string shown_value(std::string_view key, const Json &value);

// Reads one JSON object. Every key read is remembered; finish() rejects the others by name.
class ConfigReader {
public:
    ConfigReader(const Json &object, std::string what);

    bool has(const std::string &key) const;
    std::string get_string(const std::string &key, const std::string &fallback);
    int64_t get_int(const std::string &key, int64_t fallback, int64_t min, int64_t max);
    double get_double(const std::string &key, double fallback);
    bool get_bool(const std::string &key, bool fallback);
    // The raw value (any type); `fallback` when absent.
    Json get_json(const std::string &key, const Json &fallback);
    // Collects the "kafka" object and any flat "kafka.<property>" keys.
    KafkaProperties kafka_properties();
    // Throws IOTS_ERR_CONFIG naming the first key that was never read.
    void finish() const;

private:
    [[noreturn]] void fail(const std::string &key, const std::string &why) const;
    const Json &object_;
    std::string what_;
    std::set<std::string> read_;
};

// Builds a librdkafka configuration: `defaults` first, then `overrides` (the user's "kafka"
// section). librdkafka's own message names any property it refuses. Caller owns the result.
rd_kafka_conf_t *make_kafka_conf(const KafkaProperties &defaults, const KafkaProperties &overrides);

// Sets one property or throws IOTS_ERR_CONFIG with librdkafka's message.
void set_kafka_property(rd_kafka_conf_t *conf, const std::string &name, const std::string &value);

}  // namespace iotstream
