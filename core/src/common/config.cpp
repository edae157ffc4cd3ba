#include "common/config.hpp"

#include <cctype>

#include "common/checked_int.hpp"

namespace iotstream {

Json parse_config(const char *text, const std::string &what) {
    if (text == nullptr || *text == '\0') return Json::object();
    Json doc;
    try {
        doc = Json::parse(text);
    } catch (const Json::parse_error &e) {
        throw Error(IOTS_ERR_CONFIG, what + " is not valid JSON: " + e.what());
    }
    if (!doc.is_object()) throw Error(IOTS_ERR_CONFIG, what + " must be a JSON object");
    return doc;
}

bool is_secret_key(std::string_view key) {
    std::string lower(key);
    for (char &c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const char *marker : {"password", "secret", "token", "key.pem", "jaas", "credential", "private"})
        if (lower.find(marker) != std::string::npos) return true;
    return false;
}

std::string shown_value(std::string_view key, const Json &value) {
    return is_secret_key(key) ? std::string("a ") + value.type_name() + " (value not shown: '" + std::string(key) +
                                    "' holds a secret)"
                              : value.dump();
}

ConfigReader::ConfigReader(const Json &object, std::string what)
    : object_(object), what_(std::move(what)) {
    if (!object_.is_object()) throw Error(IOTS_ERR_CONFIG, what_ + " must be a JSON object");
}

void ConfigReader::fail(const std::string &key, const std::string &why) const {
    throw Error(IOTS_ERR_CONFIG, what_ + ": key '" + key + "' " + why);
}

bool ConfigReader::has(const std::string &key) const { return object_.contains(key); }

std::string ConfigReader::get_string(const std::string &key, const std::string &fallback) {
    read_.insert(key);
    auto it = object_.find(key);
    if (it == object_.end()) return fallback;
    if (!it->is_string()) fail(key, "must be a string, got " + std::string(it->type_name()));
    return it->get<std::string>();
}

int64_t ConfigReader::get_int(const std::string &key, int64_t fallback, int64_t min, int64_t max) {
    read_.insert(key);
    auto it = object_.find(key);
    if (it == object_.end()) return fallback;
    int64_t value = 0;
    std::string why;
    if (!checked_int(*it, min, max, value, why)) fail(key, why);
    return value;
}

double ConfigReader::get_double(const std::string &key, double fallback) {
    read_.insert(key);
    auto it = object_.find(key);
    if (it == object_.end()) return fallback;
    if (!it->is_number()) fail(key, "must be a number, got " + std::string(it->type_name()));
    return it->get<double>();
}

bool ConfigReader::get_bool(const std::string &key, bool fallback) {
    read_.insert(key);
    auto it = object_.find(key);
    if (it == object_.end()) return fallback;
    if (!it->is_boolean()) fail(key, "must be true or false, got " + shown_value(key, *it));
    return it->get<bool>();
}

Json ConfigReader::get_json(const std::string &key, const Json &fallback) {
    read_.insert(key);
    auto it = object_.find(key);
    return it == object_.end() ? fallback : *it;
}

static std::string kafka_value_text(const std::string &name, const Json &value) {
    if (value.is_string()) return value.get<std::string>();
    if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
    if (value.is_number()) return value.dump();
    throw Error(IOTS_ERR_CONFIG,
                "kafka property '" + name + "' must be a string, number or boolean");
}

KafkaProperties ConfigReader::kafka_properties() {
    KafkaProperties props;
    read_.insert("kafka");
    if (auto it = object_.find("kafka"); it != object_.end()) {
        if (!it->is_object()) fail("kafka", "must be an object of librdkafka properties");
        for (auto &[name, value] : it->items()) props[name] = kafka_value_text(name, value);
    }
    for (auto &[key, value] : object_.items()) {
        if (key.rfind("kafka.", 0) == 0) {
            read_.insert(key);
            props[key.substr(6)] = kafka_value_text(key.substr(6), value);
        }
    }
    return props;
}

void ConfigReader::finish() const {
    for (auto &[key, value] : object_.items())
        if (read_.count(key) == 0) fail(key, "is not a known key");
}

void set_kafka_property(rd_kafka_conf_t *conf, const std::string &name, const std::string &value) {
    char errstr[512];
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK)
        // librdkafka's message may quote the value: never for a secret.
        throw Error(IOTS_ERR_CONFIG, "kafka property '" + name + "': " +
                                         (is_secret_key(name) ? std::string("invalid value (not shown: a secret)") : errstr));
}

rd_kafka_conf_t *make_kafka_conf(const KafkaProperties &defaults, const KafkaProperties &overrides) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    try {
        for (auto &[name, value] : defaults)
            if (overrides.count(name) == 0) set_kafka_property(conf, name, value);
        for (auto &[name, value] : overrides) set_kafka_property(conf, name, value);
    } catch (...) {
        rd_kafka_conf_destroy(conf);
        throw;
    }
    return conf;
}

}  // namespace iotstream
