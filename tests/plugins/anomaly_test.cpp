// anomaly plugin: the seed's default thresholds (strict), custom rules and their validation.
#include <gtest/gtest.h>

#include <set>

#include "hosted_plugin.hpp"

namespace iotstream::test {
namespace {

using Json = nlohmann::json;

// (record index, rule name) for every hit, to compare as a set.
std::set<std::pair<uint32_t, std::string>> hits(const HostedPlugin &host) {
    std::set<std::pair<uint32_t, std::string>> out;
    for (auto &a : host.anomalies) out.emplace(a.index, host.rules()[static_cast<size_t>(a.rule_id)]);
    return out;
}

TEST(AnomalyPlugin, DefaultRulesAreStrictAtTheBoundaries) {
    HostedPlugin host("anomaly", nullptr);
    ASSERT_EQ(host.rules(), (std::vector<std::string>{"temperature_out_of_range",
                                                      "humidity_out_of_range", "low_battery"}));
    std::vector<Reading> readings(12, Reading{"s", 0});
    readings[0].temperature = 40.0;   // not above 40
    readings[1].temperature = 40.01;  // fires
    readings[2].temperature = 0.0;    // not below 0
    readings[3].temperature = -0.01;  // fires
    readings[4].humidity = 95.0;
    readings[5].humidity = 95.5;      // fires
    readings[6].humidity = 5.0;
    readings[7].humidity = 4.9;       // fires
    readings[8].battery_level = 10.0;
    readings[9].battery_level = 9.99; // fires
    readings[10].temperature = kAbsent;  // absent never fires
    readings[10].battery_level = kAbsent;
    readings[11].temperature = 45;    // two rules on one record
    readings[11].battery_level = 1;
    ReadingBatch batch(readings);
    host.process(batch);

    std::set<std::pair<uint32_t, std::string>> expected = {
        {1, "temperature_out_of_range"}, {3, "temperature_out_of_range"},
        {5, "humidity_out_of_range"},    {7, "humidity_out_of_range"},
        {9, "low_battery"},              {11, "temperature_out_of_range"},
        {11, "low_battery"}};
    EXPECT_EQ(hits(host), expected);
    EXPECT_EQ(host.anomalies.size(), expected.size());
    for (auto &a : host.anomalies) {
        if (a.index == 1) {
            EXPECT_EQ(a.value, 40.01);
        }
    }
    // The host set the bits for later stages.
    EXPECT_EQ(batch.anomaly_bits(0), 0u);
    EXPECT_EQ(batch.anomaly_bits(11), 0b101u);
}

TEST(AnomalyPlugin, CustomRuleWithOneBound) {
    HostedPlugin host("anomaly",
                  Json{{"rules", {{{"name", "high_pressure"}, {"field", "pressure"}, {"above", 1015}}}}});
    std::vector<Reading> readings(3, Reading{"s", 0});
    readings[0].pressure = 1015;
    readings[1].pressure = 1015.5;
    readings[2].pressure = -5000;  // no lower bound: never fires below
    host.process(readings);
    ASSERT_EQ(host.anomalies.size(), 1u);
    EXPECT_EQ(host.anomalies[0].index, 1u);
    EXPECT_EQ(host.rules()[0], "high_pressure");
}

TEST(AnomalyPlugin, RuleValidationNamesTheProblem) {
    struct Case {
        Json rules;
        const char *expected;
    } cases[] = {
        {Json::array({{{"name", "a"}, {"field", "altitude"}, {"above", 1}}}),
         "unknown field 'altitude'"},
        {Json::array({{{"name", "a"}, {"field", "humidity"}}}), "needs 'above', 'below' or both"},
        {Json::array({{{"name", "a"}, {"field", "humidity"}, {"above", 1}},
                      {{"name", "a"}, {"field", "pressure"}, {"above", 1}}}),
         "rules[1] ('a'): duplicate rule name"},
        {Json::array({{{"name", "a"}, {"field", "humidity"}, {"above", "90"}}}),
         "'above' must be a number"},
        {Json::array({{{"name", "a"}, {"field", "humidity"}, {"abov", 90}}}),
         "unknown key 'abov'"},
        {Json::array({{{"name", "a"}, {"field", "humidity"}, {"above", 5}, {"below", 90}}}),
         "every value would fire"},
        {Json::array({{{"field", "humidity"}, {"above", 5}}}), "'name' must be a non-empty string"},
        {Json::array({42}), "rules[0] must be an object"},
        {Json{{"name", "a"}}, "must be an array"},
    };
    for (auto &c : cases) {
        std::string error = HostedPlugin::create_error("anomaly", Json{{"rules", c.rules}});
        EXPECT_NE(error.find(c.expected), std::string::npos) << c.rules << " -> " << error;
        EXPECT_EQ(error.rfind("anomaly: ", 0), 0u) << error;
    }
}

}  // namespace
}  // namespace iotstream::test
