// Decode throughput: our simdjson On-Demand decoder against the same extraction done with
// nlohmann::json's DOM, on seed-shaped readings from 100K sensors with random values.
//
//   build-dir/tests/bench/iotstream-bench-decode
//
// items_per_second is readings per second on one thread.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "decode/decoder.hpp"
#include "decode/timestamp.hpp"

using namespace iotstream;

namespace {

constexpr size_t kReadings = 200'000;
constexpr size_t kSensors = 100'000;
constexpr size_t kBatch = 1'000;  // one poll

// Seed readings as Python's json.dumps writes them (", " and ": " separators).
std::vector<std::string> make_readings(bool shuffled_keys) {
    std::mt19937_64 rng(42);
    auto uniform = [&rng](double lo, double hi) {
        return std::uniform_real_distribution<double>(lo, hi)(rng);
    };
    std::vector<std::string> out;
    out.reserve(kReadings);
    const int64_t start_ms = 1795736083123;
    char buffer[512];
    for (size_t i = 0; i < kReadings; ++i) {
        size_t sensor = rng() % kSensors;
        std::string timestamp = format_iso8601_utc(start_ms + static_cast<int64_t>(i) * 3);
        timestamp.pop_back();      // naive, like datetime.utcnow().isoformat()
        timestamp += "456";        // microseconds
        char data[256];
        std::snprintf(data, sizeof data,
                      "{\"temperature\": %.2f, \"humidity\": %.2f, \"pressure\": %.2f, "
                      "\"battery_level\": %.1f, \"location\": {\"lat\": %.6f, \"lon\": %.6f}}",
                      uniform(20, 35), uniform(30, 80), uniform(1000, 1020), uniform(0, 100),
                      uniform(37, 38), uniform(-122, -121));
        char uuid[40];
        std::snprintf(uuid, sizeof uuid, "%08llx-%04llx-4%03llx-a%03llx-%012llx",
                      static_cast<unsigned long long>(rng() & 0xffffffff),
                      static_cast<unsigned long long>(rng() & 0xffff),
                      static_cast<unsigned long long>(rng() & 0xfff),
                      static_cast<unsigned long long>(rng() & 0xfff),
                      static_cast<unsigned long long>(rng() & 0xffffffffffff));
        if (shuffled_keys)
            std::snprintf(buffer, sizeof buffer,
                          "{\"message_id\": \"%s\", \"data\": %s, \"timestamp\": \"%s\", "
                          "\"sensor_id\": \"sensor_%zu_%zu\"}",
                          uuid, data, timestamp.c_str(), sensor / 1000, sensor % 1000);
        else
            std::snprintf(buffer, sizeof buffer,
                          "{\"sensor_id\": \"sensor_%zu_%zu\", \"timestamp\": \"%s\", "
                          "\"data\": %s, \"message_id\": \"%s\"}",
                          sensor / 1000, sensor % 1000, timestamp.c_str(), data, uuid);
        out.emplace_back(buffer);
    }
    return out;
}

std::vector<RawRecord> as_records(const std::vector<std::string> &payloads) {
    std::vector<RawRecord> records;
    records.reserve(payloads.size());
    for (size_t i = 0; i < payloads.size(); ++i)
        records.push_back(RawRecord{payloads[i].data(), payloads[i].size(), 0,
                                    static_cast<int64_t>(i)});
    return records;
}

void run_decoder(benchmark::State &state, bool shuffled_keys) {
    static const auto ordered = make_readings(false);
    static const auto shuffled = make_readings(true);
    const auto &payloads = shuffled_keys ? shuffled : ordered;
    const auto records = as_records(payloads);
    Decoder decoder(DecoderSchema::defaults());
    DecodedBatch batch;
    size_t position = 0, bytes = 0, readings = 0;
    for (auto _ : state) {
        std::span<const RawRecord> poll(records.data() + position, kBatch);
        decoder.decode(poll, batch);
        if (batch.size() != kBatch) state.SkipWithError("a generated reading was rejected");
        benchmark::DoNotOptimize(batch.view().fields[0][kBatch - 1]);
        for (const auto &r : poll) bytes += r.len;
        readings += kBatch;
        position = (position + kBatch) % records.size();
    }
    state.SetItemsProcessed(static_cast<int64_t>(readings));
    state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

void BM_DecodeSimdjson(benchmark::State &state) { run_decoder(state, false); }
void BM_DecodeSimdjsonShuffledKeys(benchmark::State &state) { run_decoder(state, true); }

// The same extraction with nlohmann's DOM: parse, look up every path, parse the timestamp,
// write the same columns. Error handling is the minimum needed to be a fair comparison.
void BM_DecodeNlohmannDom(benchmark::State &state) {
    static const auto payloads = make_readings(false);
    const DecoderSchema schema = DecoderSchema::defaults();
    std::vector<std::vector<std::string>> paths;
    for (const auto &field : schema.fields) {
        std::vector<std::string> segments;
        size_t start = 0, dot;
        while ((dot = field.find('.', start)) != std::string::npos) {
            segments.push_back(field.substr(start, dot - start));
            start = dot + 1;
        }
        segments.push_back(field.substr(start));
        paths.push_back(std::move(segments));
    }
    std::vector<std::vector<double>> columns(schema.fields.size(), std::vector<double>(kBatch));
    std::vector<std::string> sensor_ids(kBatch);
    std::vector<int64_t> times(kBatch);
    size_t position = 0, bytes = 0, readings = 0;
    for (auto _ : state) {
        for (size_t i = 0; i < kBatch; ++i) {
            const std::string &payload = payloads[position + i];
            bytes += payload.size();
            nlohmann::json doc = nlohmann::json::parse(payload, nullptr, false);
            if (doc.is_discarded()) state.SkipWithError("parse failed");
            sensor_ids[i] = doc["sensor_id"].get<std::string>();
            auto parsed = parse_iso8601_ms(doc["timestamp"].get_ref<const std::string &>());
            times[i] = parsed.epoch_ms;
            const nlohmann::json &data = doc["data"];
            for (size_t f = 0; f < paths.size(); ++f) {
                const nlohmann::json *node = &data;
                for (const auto &segment : paths[f]) {
                    auto it = node->find(segment);
                    node = it == node->end() ? nullptr : &*it;
                    if (node == nullptr) break;
                }
                columns[f][i] = node && node->is_number() ? node->get<double>() : std::nan("");
            }
        }
        benchmark::DoNotOptimize(columns[0][kBatch - 1]);
        readings += kBatch;
        position = (position + kBatch) % payloads.size();
    }
    state.SetItemsProcessed(static_cast<int64_t>(readings));
    state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

}  // namespace

BENCHMARK(BM_DecodeSimdjson);
BENCHMARK(BM_DecodeSimdjsonShuffledKeys);
BENCHMARK(BM_DecodeNlohmannDom);
BENCHMARK_MAIN();
