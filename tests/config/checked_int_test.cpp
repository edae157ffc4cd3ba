// The one conversion of configured integers (common/checked_int.hpp), and the readers that use
// it: ConfigReader (core config documents) and PluginConfig (a stage's config). Expectations
// come from exact 128-bit arithmetic on the decimal text, not from the conversion's own casts.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "common/checked_int.hpp"
#include "common/config.hpp"
#include "plugin_host/plugin_config.hpp"

namespace iotstream {
namespace {

__extension__ using Int128 = __int128;  // exact arithmetic past int64, for the model
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

std::string decimal(Int128 n) {
    if (n == 0) return "0";
    bool negative = n < 0;
    std::string digits;
    while (n != 0) {
        int digit = static_cast<int>(n % 10);
        digits.insert(digits.begin(), static_cast<char>('0' + (digit < 0 ? -digit : digit)));
        n /= 10;
    }
    return negative ? "-" + digits : digits;
}

std::optional<int64_t> convert(const std::string &text, int64_t min = kMin, int64_t max = kMax) {
    int64_t out = 42;
    std::string why;
    if (checked_int_text(text, min, max, out, why)) {
        EXPECT_TRUE(why.empty()) << why;
        return out;
    }
    EXPECT_EQ(out, 42) << text << ": a refusal must not write the output";
    EXPECT_NE(why.find("must be an integer"), std::string::npos) << why;
    return std::nullopt;
}

// Integer text around every edge of int64 and of a small range: accepted exactly when the
// number (in 128 bits) lies within both; never wrapped.
TEST(CheckedInt, IntegerTextIsAcceptedExactlyWhenInRange) {
    const Int128 two63 = Int128{1} << 63, two64 = Int128{1} << 64;
    std::vector<Int128> values = {0, 1, -1, 2147483647, 2147483648, 3000000000, 4294967296, -2147483649};
    for (Int128 edge : {two63, -two63, two64}) {
        for (int d = -2; d <= 2; ++d) values.push_back(edge + d);
    }
    for (Int128 n : values) {
        const std::string text = decimal(n);
        const bool fits = n >= kMin && n <= kMax;
        EXPECT_EQ(convert(text), fits ? std::optional<int64_t>(static_cast<int64_t>(n)) : std::nullopt) << text;
        const bool in_int32 = n >= 1 && n <= INT32_MAX;
        EXPECT_EQ(convert(text, 1, INT32_MAX), in_int32 ? std::optional<int64_t>(static_cast<int64_t>(n)) : std::nullopt)
            << text;
    }
}

// A float is taken only when it is an integer a double holds exactly (|x| <= 2^53).
TEST(CheckedInt, FloatsMustBeExactIntegers) {
    EXPECT_EQ(convert("5.0"), 5);
    EXPECT_EQ(convert("-3e2"), -300);
    EXPECT_EQ(convert("9007199254740992.0"), 9007199254740992);    // 2^53
    EXPECT_EQ(convert("-9007199254740992.0"), -9007199254740992);
    for (const char *refused : {"1.5", "-0.5", "1e300", "-1e300", "9007199254740994.0", "4294967297.0e10",
                                "9223372036854775808.0", "-9223372036854775809", "1e-7"})
        EXPECT_EQ(convert(refused), std::nullopt) << refused;
}

TEST(CheckedInt, NonNumbersAreRefusedAndQuotedInTheReason) {
    for (const char *text : {"", "abc", "12abc", "0x10", "+5", "true", "null", "\"5\"", "[5]", "5 6"}) {
        int64_t out = 0;
        std::string why;
        EXPECT_FALSE(checked_int_text(text, 0, 10, out, why)) << text;
        EXPECT_EQ(why.rfind("must be an integer in [0, 10], got ", 0), 0u) << why;
    }
    int64_t out = 0;
    std::string why;
    EXPECT_FALSE(checked_int_text("3000000000", 1, INT32_MAX, out, why));
    EXPECT_EQ(why, "must be an integer in [1, 2147483647], got 3000000000");
    EXPECT_FALSE(checked_int(nlohmann::json(1.5), kMin, kMax, out, why));
    EXPECT_EQ(why, "must be an integer, got 1.5");
}

// The core's config reader: 2^64 - 1 is refused by name (it used to become -1, "unset").
TEST(CheckedInt, ConfigReaderRefusesByKey) {
    auto read = [](const std::string &doc) {
        const Json object = Json::parse(doc);  // the reader keeps a reference
        ConfigReader reader(object, "pipeline config: input");
        return reader.get_int("start_time_ms", -1, -1, kMax);
    };
    EXPECT_EQ(read(R"({"start_time_ms": 1700000000000})"), 1700000000000);
    EXPECT_EQ(read(R"({"start_time_ms": 5.0})"), 5);
    EXPECT_EQ(read("{}"), -1);
    for (const char *doc : {R"({"start_time_ms": 18446744073709551615})", R"({"start_time_ms": 9223372036854775808})",
                            R"({"start_time_ms": 1e300})", R"({"start_time_ms": 1.5})", R"({"start_time_ms": -2})"}) {
        try {
            read(doc);
            ADD_FAILURE() << doc << " was accepted";
        } catch (const Error &e) {
            EXPECT_EQ(e.code(), IOTS_ERR_CONFIG);
            EXPECT_NE(std::string(e.what()).find("'start_time_ms' must be an integer"), std::string::npos) << e.what();
        }
    }
}

// A stage's config: the same values refused for an IOTS_CONFIG_INT key, with the key named.
TEST(CheckedInt, PluginConfigRefusesByKey) {
    static const iots_config_key_t keys[] = {
        {.name = "size_s", .type = IOTS_CONFIG_INT, .default_json = "300", .help = "window length"}};
    iots_plugin_descriptor_t descriptor{};
    descriptor.name = "window";
    descriptor.config_keys = keys;
    descriptor.config_key_count = 1;
    iots_host_api_t host{};
    fill_config_functions(host);
    PluginConfig sixty(descriptor, Json{{"size_s", 60.0}});
    int64_t read = 0;
    EXPECT_EQ(host.config_int(sixty.handle(), "size_s", &read), 0);
    EXPECT_EQ(read, 60);
    for (const Json &value : {Json::parse("18446744073709551615"), Json(1e300), Json(2.5), Json("60")}) {
        try {
            PluginConfig config(descriptor, Json{{"size_s", value}});
            ADD_FAILURE() << value.dump() << " was accepted";
        } catch (const Error &e) {
            EXPECT_EQ(e.code(), IOTS_ERR_CONFIG);
            EXPECT_NE(std::string(e.what()).find("'size_s' must be an integer"), std::string::npos) << e.what();
        }
    }
}

}  // namespace
}  // namespace iotstream
