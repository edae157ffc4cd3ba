// anomaly: threshold rules on numeric fields (the seed's _detect_anomalies, made configurable).
// A rule fires when value > above or value < below (strict, as the seed); an absent value (NaN)
// never fires. Each hit is reported to the host, which publishes the alert and sets the rule's
// bit in anomaly_bits for later stages (the window stage lists them per window).
#include <cmath>
#include <limits>
#include <set>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../support/plugin_adapter.hpp"
#include "../support/plugin_support.hpp"

namespace {

using iotstream::plugin::PluginError;
using Json = nlohmann::json;

constexpr const char *kPluginName = "anomaly";

struct ThresholdRule {
    std::string name;
    int rule_id;
    int field;     // batch column
    double above;  // +inf when the rule has no upper bound: nothing is greater
    double below;  // -inf when the rule has no lower bound: nothing is smaller
};

class AnomalyRules {
public:
    AnomalyRules(const iots_host_api_t *host, iots_host_ctx_t *ctx, const iots_config_t *cfg)
        : host_(host), ctx_(ctx) {
        std::string text = iotstream::plugin::config_json(host, cfg, "rules");
        Json rules;
        try {
            rules = Json::parse(text);
        } catch (const Json::parse_error &e) {
            throw PluginError(std::string("config key 'rules' is not valid JSON: ") + e.what());
        }
        if (!rules.is_array()) throw PluginError("config key 'rules' must be an array of rules");
        std::set<std::string> names;
        for (size_t r = 0; r < rules.size(); ++r) add_rule(rules[r], r, names);
    }

    void process(const iots_batch_view_t *batch) {
        for (const ThresholdRule &rule : rules_) {
            if (static_cast<uint32_t>(rule.field) >= batch->field_count)
                throw PluginError("rule '" + rule.name + "': field column " +
                                  std::to_string(rule.field) + " is not in the batch (" +
                                  std::to_string(batch->field_count) + " columns)");
            // One column, one tight loop: hits are rare, so the branch predicts well.
            const double *column = batch->fields[rule.field];
            const double above = rule.above, below = rule.below;
            for (uint32_t i = 0; i < batch->count; ++i) {
                double value = column[i];
                if (value > above || value < below) {
                    if (host_->report_anomaly(ctx_, batch, i, rule.rule_id, value) != 0)
                        throw PluginError("the host refused the anomaly report of rule '" +
                                          rule.name + "' for record " + std::to_string(i));
                }
            }
        }
    }

private:
    static double bound(const Json &rule, const char *key, const std::string &where,
                        double absent) {
        auto it = rule.find(key);
        if (it == rule.end() || it->is_null()) return absent;
        if (!it->is_number())
            throw PluginError(where + ": '" + key + "' must be a number, got " + it->dump());
        return it->get<double>();
    }

    void add_rule(const Json &rule, size_t position, std::set<std::string> &names) {
        std::string where = "rules[" + std::to_string(position) + "]";
        if (!rule.is_object())
            throw PluginError(where + " must be an object {name, field, above?, below?}, got " +
                              rule.dump());
        for (auto &[key, value] : rule.items()) {
            if (key != "name" && key != "field" && key != "above" && key != "below")
                throw PluginError(where + ": unknown key '" + key +
                                  "' (known: name, field, above, below)");
        }
        auto name = rule.find("name");
        if (name == rule.end() || !name->is_string() || name->get<std::string>().empty())
            throw PluginError(where + ": 'name' must be a non-empty string");
        ThresholdRule parsed;
        parsed.name = name->get<std::string>();
        where += " ('" + parsed.name + "')";
        if (!names.insert(parsed.name).second)
            throw PluginError(where + ": duplicate rule name");

        auto field = rule.find("field");
        if (field == rule.end() || !field->is_string())
            throw PluginError(where + ": 'field' must be a string naming a numeric field");
        std::string field_name = field->get<std::string>();
        parsed.field = host_->field_index(ctx_, field_name.c_str());
        if (parsed.field < 0)
            throw PluginError(where + ": unknown field '" + field_name +
                              "' (not a numeric field of the decoder schema)");

        constexpr double inf = std::numeric_limits<double>::infinity();
        parsed.above = bound(rule, "above", where, inf);
        parsed.below = bound(rule, "below", where, -inf);
        if (parsed.above == inf && parsed.below == -inf)
            throw PluginError(where + ": needs 'above', 'below' or both");
        // above < below would make every value fire: surely a swapped pair.
        if (parsed.above < parsed.below)
            throw PluginError(where + ": 'above' (" + std::to_string(parsed.above) +
                              ") is below 'below' (" + std::to_string(parsed.below) +
                              "), so every value would fire");

        parsed.rule_id = host_->register_rule(ctx_, parsed.name.c_str());
        if (parsed.rule_id < 0)
            throw PluginError(where + ": the host refused to register it (64 rules at most)");
        rules_.push_back(std::move(parsed));
    }

    const iots_host_api_t *host_;
    iots_host_ctx_t *ctx_;
    std::vector<ThresholdRule> rules_;
};

// The seed's three checks.
constexpr const char *kDefaultRules =
    R"([{"name":"temperature_out_of_range","field":"temperature","above":40,"below":0},)"
    R"({"name":"humidity_out_of_range","field":"humidity","above":95,"below":5},)"
    R"({"name":"low_battery","field":"battery_level","below":10}])";

const iots_config_key_t kConfigKeys[] = {
    {"rules", IOTS_CONFIG_JSON, kDefaultRules,
     "threshold rules: [{name, field, above?, below?}]; fires when value > above or < below"},
};

constexpr iotstream::plugin::PluginInfo kInfo = {
    .name = kPluginName,
    .version = "1.0.0",
    .description = "Threshold anomaly rules on numeric fields; publishes an alert per hit",
    .kind = IOTS_PLUGIN_RULE,
    .config_keys = kConfigKeys,
    .config_key_count = static_cast<uint32_t>(std::size(kConfigKeys)),
};

const iots_plugin_descriptor_t kDescriptor = iotstream::plugin::PluginAdapter<AnomalyRules, kInfo>::descriptor();

}  // namespace

IOTS_PLUGIN_DEFINE(&kDescriptor);
