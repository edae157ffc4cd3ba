// Robustness: thousands of random, truncated and mutated payloads. The decoder must never
// crash, must account for every record (decoded + rejected == input), and must agree with an
// independent reference built on nlohmann::json: invalid JSON is never accepted, a valid
// envelope is always accepted, and accepted values equal the reference's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "decode/decoder.hpp"
#include "decode/timestamp.hpp"

using namespace iotstream;

namespace {

struct Expected {
    std::string sensor_id;
    int64_t event_time_ms;
    std::vector<double> values;  // NaN = absent
};

// nlohmann refuses numbers that overflow a double (RFC 8259 allows them; we accept them in
// keys we do not read), so it cannot judge payloads holding one.
bool reference_can_judge(const std::string &payload) {
    try {
        nlohmann::json parsed = nlohmann::json::parse(payload);
        (void)parsed;
    } catch (const nlohmann::json::out_of_range &e) {
        return e.id != 406;
    } catch (const nlohmann::json::exception &) {
    }
    return true;
}

// The reference decoder: slow and simple, written from the spec, not from decoder.cpp.
std::optional<Expected> reference_decode(const std::string &payload, const DecoderSchema &schema) {
    nlohmann::json doc = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) return std::nullopt;
    Expected out;
    auto id = doc.find("sensor_id");
    if (id == doc.end() || !id->is_string() || id->get<std::string>().empty()) return std::nullopt;
    out.sensor_id = id->get<std::string>();
    auto ts = doc.find("timestamp");
    if (ts == doc.end()) return std::nullopt;
    if (ts->is_string()) {
        auto parsed = parse_iso8601_ms(ts->get<std::string>());
        if (parsed.error != nullptr) return std::nullopt;
        out.event_time_ms = parsed.epoch_ms;
    } else if (ts->is_number_integer()) {
        if (ts->is_number_unsigned() && ts->get<uint64_t>() > uint64_t(INT64_MAX)) return std::nullopt;
        int64_t ms = ts->get<int64_t>();
        if (ms < kMinTimestampMs || ms > kMaxTimestampMs) return std::nullopt;
        out.event_time_ms = ms;
    } else {
        return std::nullopt;
    }
    const nlohmann::json null_json;
    const nlohmann::json *data = doc.contains("data") ? &doc["data"] : &null_json;
    if (!data->is_null() && !data->is_object()) return std::nullopt;
    for (size_t f = 0; f < schema.fields.size(); ++f) {
        const nlohmann::json *node = data;
        const std::string &path = schema.fields[f];
        size_t start = 0;
        bool absent = false;
        while (true) {
            if (node->is_null()) {
                absent = true;
                break;
            }
            if (!node->is_object()) return std::nullopt;
            size_t dot = path.find('.', start);
            std::string key = path.substr(start, dot == std::string::npos ? dot : dot - start);
            if (!node->contains(key)) {
                absent = true;
                break;
            }
            node = &(*node)[key];
            if (dot == std::string::npos) break;
            start = dot + 1;
        }
        double value = std::nan("");
        if (!absent && !node->is_null()) {
            if (!node->is_number()) return std::nullopt;
            value = node->get<double>();
            if (!std::isfinite(value)) return std::nullopt;
        }
        if (std::isnan(value) && schema.required[f]) return std::nullopt;
        out.values.push_back(value);
    }
    return out;
}

class PayloadGenerator {
public:
    explicit PayloadGenerator(uint32_t seed) : rng_(seed) {}

    std::string next() {
        std::string payload = envelope();
        switch (pick(10)) {
        case 0: case 1: case 2: case 3: return payload;  // intact (possibly odd) envelope
        case 4: return payload.substr(0, pick(payload.size() + 1));  // truncated
        case 5: {                                                   // bytes overwritten
            for (size_t k = 0, n = 1 + pick(3); k < n; ++k)
                payload[pick(payload.size())] = kSpecials[pick(sizeof kSpecials - 1)];
            return payload;
        }
        case 6: {  // a token inserted anywhere
            static const char *const kTokens[] = {"NaN", "-Infinity", "}", "]", "\"", ",", ":",
                                                  "\\", "{", "[", "null", "1e999", "\\u",
                                                  "\xff", "\xc3", " ", "\"x\":", "0x1F"};
            payload.insert(pick(payload.size() + 1), kTokens[pick(std::size(kTokens))]);
            return payload;
        }
        case 7: {  // a range deleted
            size_t at = pick(payload.size());
            return payload.erase(at, 1 + pick(8));
        }
        case 8: {  // random bytes, any value including NUL
            std::string garbage(pick(300), '\0');
            for (char &c : garbage) c = static_cast<char>(pick(256));
            return garbage;
        }
        default: {  // random byte flips
            for (size_t k = 0, n = 1 + pick(4); k < n; ++k)
                payload[pick(payload.size())] = static_cast<char>(pick(256));
            return payload;
        }
        }
    }

private:
    static constexpr char kSpecials[] = "{}[]\",:\\ 0-.eE+tfnNaI\x01";

    size_t pick(size_t n) { return n == 0 ? 0 : std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
    double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng_); }

    std::string number_text(double lo, double hi) {
        char buffer[64];
        std::snprintf(buffer, sizeof buffer, "%.*f", static_cast<int>(pick(7)), uniform(lo, hi));
        return buffer;
    }

    // Usually a number, sometimes something else a careless producer might write.
    std::string value(double lo, double hi) {
        switch (pick(40)) {
        case 0: return "null";
        case 1: return "NaN";
        case 2: return "Infinity";
        case 3: return "\"" + number_text(lo, hi) + "\"";
        case 4: return "true";
        case 5: return "[1]";
        case 6: return "1e400";
        case 7: return "{}";
        case 8: return std::to_string(static_cast<long long>(uniform(lo, hi)));
        default: return number_text(lo, hi);
        }
    }

    std::string timestamp() {
        int64_t ms = static_cast<int64_t>(uniform(-1e12, 4.2e12));
        switch (pick(12)) {
        case 0: return std::to_string(ms);
        case 1: return "\"2026-02-30T10:00:00\"";
        case 2: return "null";
        case 3: return "1.5e12";
        default: break;
        }
        std::string text = format_iso8601_utc(ms);  // ...Z
        switch (pick(5)) {
        case 0: text.pop_back(); break;                       // naive
        case 1: text.replace(text.size() - 1, 1, "+05:30"); break;
        case 2: text.replace(text.size() - 1, 1, "-0800"); break;
        case 3: text.replace(text.size() - 1, 1, "123456"); break;  // microseconds, naive
        default: break;
        }
        if (pick(4) == 0) text[10] = ' ';
        return "\"" + text + "\"";
    }

    std::string envelope() {
        std::vector<std::string> data = {
            "\"temperature\": " + value(20, 35), "\"humidity\": " + value(30, 80),
            "\"pressure\": " + value(1000, 1020), "\"battery_level\": " + value(0, 100),
            "\"location\": {\"lat\": " + value(37, 38) + ", \"lon\": " + value(-122, -121) + "}"};
        if (pick(8) == 0) data.erase(data.begin() + static_cast<long>(pick(data.size())));
        if (pick(8) == 0) data.push_back("\"firmware\": {\"v\": [1, 2, \"3\"], \"ok\": false}");
        std::shuffle(data.begin(), data.end(), rng_);
        std::string data_text = "{";
        for (size_t k = 0; k < data.size(); ++k) data_text += (k ? ", " : "") + data[k];
        data_text += "}";

        std::string id = "sensor_" + std::to_string(pick(100)) + "_" + std::to_string(pick(1000));
        switch (pick(20)) {
        case 0: id = "\"\""; break;
        case 1: id = "42"; break;
        case 2: id = "\"esc\\u00e9\\\"" + id + "\""; break;
        default: id = "\"" + id + "\""; break;
        }
        std::vector<std::string> top = {"\"sensor_id\": " + id, "\"timestamp\": " + timestamp(),
                                        "\"data\": " + data_text,
                                        "\"message_id\": \"6f1c2d5e-8a4b-4c3d-9e2f-1a2b3c4d5e6f\""};
        if (pick(10) == 0) top.erase(top.begin() + static_cast<long>(pick(top.size())));
        if (pick(6) == 0) std::shuffle(top.begin(), top.end(), rng_);
        std::string text = "{";
        for (size_t k = 0; k < top.size(); ++k) text += (k ? ", " : "") + top[k];
        return text + "}";
    }

    std::mt19937_64 rng_;
};

}  // namespace

TEST(DecoderRobustness, RandomAndMutatedPayloadsNeverCrashAndAlwaysReconcile) {
    const DecoderSchema schema = DecoderSchema::defaults();
    Decoder decoder(schema);
    DecodedBatch batch;
    PayloadGenerator generator(20260226);
    size_t accepted = 0, rejected = 0;
    std::map<std::string, size_t> reasons;

    for (int round = 0; round < 60; ++round) {
        std::vector<std::string> payloads(500);
        for (auto &p : payloads) p = generator.next();
        std::vector<RawRecord> records;
        for (size_t i = 0; i < payloads.size(); ++i)
            records.push_back(RawRecord{payloads[i].data(), payloads[i].size(),
                                        static_cast<uint32_t>(round), static_cast<int64_t>(i)});
        decoder.decode(records, batch);

        // Every input is exactly one row or one rejection.
        ASSERT_EQ(batch.size() + batch.rejections().size(), payloads.size());
        ASSERT_EQ(batch.input_count(), payloads.size());
        std::vector<int> seen(payloads.size(), 0);
        for (uint32_t index : batch.input_indices()) ++seen.at(index);
        for (const Rejection &r : batch.rejections()) {
            ++seen.at(r.input_index);
            EXPECT_FALSE(r.detail.empty());
            EXPECT_NE(std::find(reject_reason::all.begin(), reject_reason::all.end(), r.reason),
                      reject_reason::all.end());
            ++reasons[std::string(r.reason)];
            // Valid JSON is never called invalid.
            if (r.reason == reject_reason::not_json && nlohmann::json::accept(payloads[r.input_index]))
                ADD_FAILURE() << "valid JSON called not_json: " << payloads[r.input_index] << " -> "
                              << r.detail;
        }
        for (size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], 1) << payloads[i];

        const auto &v = batch.view();
        std::vector<bool> is_row(payloads.size(), false);
        for (uint32_t row = 0; row < v.count; ++row) {
            uint32_t index = batch.input_indices()[row];
            is_row[index] = true;
            ASSERT_EQ(v.offsets[row], static_cast<int64_t>(index));
            ASSERT_EQ(v.payloads[row].data, payloads[index].data());
            if (!reference_can_judge(payloads[index])) continue;
            auto expected = reference_decode(payloads[index], schema);
            ASSERT_TRUE(expected.has_value()) << "accepted, but the reference refuses: " << payloads[index];
            ASSERT_EQ(std::string(v.sensor_ids[row].data, v.sensor_ids[row].len), expected->sensor_id);
            ASSERT_EQ(v.event_time_ms[row], expected->event_time_ms) << payloads[index];
            for (uint32_t f = 0; f < v.field_count; ++f) {
                double got = v.fields[f][row], want = expected->values[f];
                ASSERT_TRUE((std::isnan(got) && std::isnan(want)) || got == want)
                    << schema.fields[f] << ": " << got << " vs " << want << " in " << payloads[index];
            }
        }
        for (size_t i = 0; i < payloads.size(); ++i)
            if (!is_row[i] && reference_decode(payloads[i], schema).has_value()) {
                const Rejection *r = nullptr;
                for (const auto &candidate : batch.rejections())
                    if (candidate.input_index == i) r = &candidate;
                ADD_FAILURE() << "rejected a valid envelope: " << payloads[i] << " -> "
                              << (r ? std::string(r->reason) + ": " + r->detail : "?");
            }
        accepted += v.count;
        rejected += batch.rejections().size();
    }
    // The generator must exercise both sides and every reason it can produce.
    EXPECT_GT(accepted, 1000u);
    EXPECT_GT(rejected, 5000u);
    for (auto reason : {"not_json", "missing_sensor_id", "missing_timestamp", "bad_timestamp",
                        "missing_field", "wrong_type", "non_finite"})
        EXPECT_GT(reasons[reason], 0u) << reason;
}
