// PluginConfig: validation against a descriptor's key table and the C readers plugins use.
#include <gtest/gtest.h>

#include "hosted_plugin.hpp"
#include "plugin_host/plugin_config.hpp"

namespace iotstream {
namespace {

const iots_config_key_t kKeys[] = {
    {"flag", IOTS_CONFIG_BOOL, "false", "a switch"},
    {"count", IOTS_CONFIG_INT, "3", "a count"},
    {"ratio", IOTS_CONFIG_DOUBLE, "0.5", "a ratio"},
    {"label", IOTS_CONFIG_STRING, "\"x\"", "a label"},
    {"rules", IOTS_CONFIG_JSON, "[]", "anything"},
    {"maybe", IOTS_CONFIG_INT, "null", "optional, no default"},
    {"needed", IOTS_CONFIG_STRING, nullptr, "must be given"},
};

iots_plugin_descriptor_t descriptor_with(const iots_config_key_t *keys, uint32_t count) {
    iots_plugin_descriptor_t d{};
    d.struct_size = sizeof d;
    d.name = "demo";
    d.config_keys = keys;
    d.config_key_count = count;
    return d;
}

std::string config_error(const iots_plugin_descriptor_t &d, const Json &config, iots_err_t *code) {
    try {
        PluginConfig cfg(d, config);
    } catch (const Error &e) {
        *code = e.code();
        return e.what();
    }
    return "";
}

TEST(PluginConfig, FillsDefaultsAndReadsTypedValues) {
    auto d = descriptor_with(kKeys, 7);
    PluginConfig cfg(d, Json{{"needed", "yes"}, {"ratio", 2}, {"rules", {{{"a", 1}}}}});
    iots_host_api_t api{};
    fill_config_functions(api);
    const iots_config_t *h = cfg.handle();

    int flag = -1;
    EXPECT_EQ(api.config_bool(h, "flag", &flag), 0);
    EXPECT_EQ(flag, 0);
    int64_t count = 0;
    EXPECT_EQ(api.config_int(h, "count", &count), 0);
    EXPECT_EQ(count, 3);
    double ratio = 0;
    EXPECT_EQ(api.config_double(h, "ratio", &ratio), 0);  // an integer accepted for a double
    EXPECT_EQ(ratio, 2.0);
    const char *text = nullptr;
    size_t len = 0;
    EXPECT_EQ(api.config_string(h, "needed", &text, &len), 0);
    EXPECT_EQ(std::string(text, len), "yes");
    EXPECT_EQ(api.config_json(h, "rules", &text, &len), 0);
    EXPECT_EQ(Json::parse(std::string(text, len)), Json::parse(R"([{"a":1}])"));

    // Wrong type, absent key and the optional key without value all read as failures.
    EXPECT_NE(api.config_int(h, "label", &count), 0);
    EXPECT_NE(api.config_string(h, "count", &text, &len), 0);
    EXPECT_NE(api.config_int(h, "nope", &count), 0);
    EXPECT_NE(api.config_int(h, "maybe", &count), 0);
    EXPECT_EQ(cfg.values()["count"], 3);
    EXPECT_EQ(cfg.values()["label"], "x");
    EXPECT_TRUE(cfg.values()["maybe"].is_null());
}

TEST(PluginConfig, IntegralFloatIsAnInteger) {
    auto d = descriptor_with(kKeys, 7);
    PluginConfig cfg(d, Json{{"needed", "y"}, {"count", 5.0}, {"maybe", 7}});
    iots_host_api_t api{};
    fill_config_functions(api);
    int64_t v = 0;
    EXPECT_EQ(api.config_int(cfg.handle(), "count", &v), 0);
    EXPECT_EQ(v, 5);
    EXPECT_EQ(api.config_int(cfg.handle(), "maybe", &v), 0);
    EXPECT_EQ(v, 7);
}

TEST(PluginConfig, RejectsUnknownKeyByName) {
    auto d = descriptor_with(kKeys, 7);
    iots_err_t code = IOTS_OK;
    std::string error = config_error(d, Json{{"needed", "y"}, {"colour", 1}}, &code);
    EXPECT_EQ(code, IOTS_ERR_CONFIG);
    EXPECT_NE(error.find("plugin 'demo': config key 'colour' is not known"), std::string::npos)
        << error;
    EXPECT_NE(error.find("flag, count"), std::string::npos) << error;  // lists the known keys
}

TEST(PluginConfig, RejectsWrongTypes) {
    auto d = descriptor_with(kKeys, 7);
    struct Case {
        Json config;
        const char *expected;
    } cases[] = {
        {{{"needed", "y"}, {"count", "3"}}, "config key 'count' must be an integer, got \"3\""},
        {{{"needed", "y"}, {"count", 2.5}}, "config key 'count' must be an integer, got 2.5"},
        {{{"needed", "y"}, {"flag", 1}}, "config key 'flag' must be a boolean, got 1"},
        {{{"needed", "y"}, {"ratio", "x"}}, "config key 'ratio' must be a number"},
        {{{"needed", 4}}, "config key 'needed' must be a string, got 4"},
        {{{"needed", "y"}, {"count", nullptr}}, "config key 'count' must be an integer, got null"},
    };
    for (auto &c : cases) {
        iots_err_t code = IOTS_OK;
        std::string error = config_error(d, c.config, &code);
        EXPECT_EQ(code, IOTS_ERR_CONFIG) << c.config;
        EXPECT_NE(error.find(c.expected), std::string::npos) << error;
    }
}

TEST(PluginConfig, RequiredKeyAndNonObject) {
    auto d = descriptor_with(kKeys, 7);
    iots_err_t code = IOTS_OK;
    EXPECT_NE(config_error(d, Json::object(), &code).find("config key 'needed' is required"),
              std::string::npos);
    EXPECT_EQ(code, IOTS_ERR_CONFIG);
    EXPECT_NE(config_error(d, Json::array(), &code).find("must be a JSON object"),
              std::string::npos);
}

TEST(PluginConfig, RefusesBrokenKeyTables) {
    const iots_config_key_t twice[] = {{"a", IOTS_CONFIG_INT, "1", ""}, {"a", IOTS_CONFIG_INT, "2", ""}};
    const iots_config_key_t bad_default[] = {{"a", IOTS_CONFIG_INT, "\"one\"", ""}};
    const iots_config_key_t bad_json[] = {{"a", IOTS_CONFIG_JSON, "[1,", ""}};
    iots_err_t code = IOTS_OK;
    EXPECT_NE(config_error(descriptor_with(twice, 2), nullptr, &code).find("declared twice"),
              std::string::npos);
    EXPECT_EQ(code, IOTS_ERR_PLUGIN);
    EXPECT_NE(config_error(descriptor_with(bad_default, 1), nullptr, &code)
                  .find("default of config key 'a' is not an integer"),
              std::string::npos);
    EXPECT_NE(config_error(descriptor_with(bad_json, 1), nullptr, &code).find("not valid JSON"),
              std::string::npos);
}

TEST(PluginConfig, BundledPluginKeyTablesAreValid) {
    for (const char *plugin : {"anomaly", "aggregate", "window"}) {
        const auto &d = test::HostedPlugin::descriptor(plugin);
        EXPECT_NO_THROW(PluginConfig(d, nullptr)) << plugin;
        iots_err_t code = IOTS_OK;
        EXPECT_NE(config_error(d, Json{{"bogus", 1}}, &code).find("config key 'bogus' is not known"),
                  std::string::npos)
            << plugin;
    }
}

}  // namespace
}  // namespace iotstream
