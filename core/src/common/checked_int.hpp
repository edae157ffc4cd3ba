// The one conversion of a configured integer: config documents (ConfigReader), plugin config
// (plugin_host/plugin_config) and, through the C API's iots_parse_int (api/integers_api.cpp),
// the hosts' integer flags all go through it, so a value that is not exactly an integer in
// range is refused the same way everywhere, never wrapped or truncated.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace iotstream {

// `value` as an int64 in [min, max]. An integer, or a float with no fractional part (JSON
// writers emit 5.0) of magnitude up to 2^53, where every integer is a double exactly (past it,
// the parser may already have rounded the text: -9223372036854775809 reads as -2^63).
// Unsigned values past INT64_MAX (18446744073709551615 is not -1), larger floats (1e300),
// fractions (1.5), NaN and non-numbers are refused.
// On refusal returns false and sets `why` to the end of a sentence naming the key:
// "must be an integer in [1, 2147483647], got 3000000000".
inline bool checked_int(const nlohmann::json &value, int64_t min, int64_t max, int64_t &out,
                        std::string &why) {
    auto refuse = [&](const char *what) {
        why = std::string(what);
        if (min != std::numeric_limits<int64_t>::min() || max != std::numeric_limits<int64_t>::max())
            why += " in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
        why += ", got " + value.dump();
        return false;
    };
    int64_t v;
    if (value.is_number_unsigned()) {
        const auto u = value.get<uint64_t>();
        if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return refuse("must be an integer");
        v = static_cast<int64_t>(u);
    } else if (value.is_number_integer()) {
        v = value.get<int64_t>();
    } else if (value.is_number_float()) {
        const double d = value.get<double>();
        constexpr double kExact = 9007199254740992.0;  // 2^53
        if (!(d >= -kExact && d <= kExact) || std::floor(d) != d) return refuse("must be an integer");  // NaN too
        v = static_cast<int64_t>(d);
    } else {
        return refuse("must be an integer");
    }
    if (v < min || v > max) return refuse("must be an integer");
    out = v;
    return true;
}

// The same for text, as a command-line flag gives it: a JSON number ("300", "5.0"; not "0x10",
// "12abc" or "").
inline bool checked_int_text(std::string_view text, int64_t min, int64_t max, int64_t &out, std::string &why) {
    nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded() || !value.is_number()) value = std::string(text);  // refused, quoted
    return checked_int(value, min, max, out, why);
}

}  // namespace iotstream
