// Splits a device's payload into readings: a JSON array's elements (their source texts, as
// the device wrote them), a single document, or NDJSON lines; enforces max_readings.
#include <algorithm>

#include "ingest/payload_split.hpp"

namespace iotstream {

using ingest_reason::kTooLarge;

namespace {

bool is_blank(std::string_view text) {
    return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

}  // namespace

// Splits a payload into readings: a JSON array's elements, a single document, or NDJSON lines.
// Text that is none of these stays one item, for the decoder to name what is wrong with it.
void Ingestor::split_items(std::string_view payload, Scratch &scratch, std::vector<IngestResult> &results) {
    scratch.items.clear();
    scratch.items_validated = false;
    const size_t start = payload.find_first_not_of(" \t\r\n");
    if (start != std::string_view::npos && payload[start] == '[') {
        simdjson::dom::element root;
        if (!scratch.parse(payload, root) && root.is_array() && root.get_array().value_unsafe().size() > 0) {
            simdjson::dom::array array = root.get_array().value_unsafe();
            if (array.size() > max_readings_) {
                results.push_back({IOTS_INGEST_TOO_LARGE, kTooLarge,
                                   "payload has " + std::to_string(array.size()) + " readings; max_readings is " +
                                       std::to_string(max_readings_)});
                return;
            }
            // Each element's own text, as the device wrote it (reformatting numbers through the
            // DOM cost more than the rest of ingestion); the DOM parse above validated it all.
            scratch.items_validated = true;
            if (scratch.raw_elements() && scratch.items.size() == array.size()) return;
            scratch.items.clear();
            for (simdjson::dom::element element : array) scratch.items.push_back(simdjson::to_string(element));
            return;
        }
        // Not an array of readings (bad JSON, or `[]`, which holds none): one item, so the
        // device gets a result that says why (fuzz_ingest found `[]` answered with nothing).
        scratch.items.emplace_back(payload);
        return;
    }
    // Several non-blank lines are NDJSON unless the whole text is one (pretty-printed) document.
    size_t lines = 0;
    for (size_t pos = 0; pos <= payload.size() && lines < 2;) {
        size_t end = std::min(payload.find('\n', pos), payload.size());
        if (!is_blank(payload.substr(pos, end - pos))) ++lines;
        pos = end + 1;
    }
    simdjson::dom::element root;
    if (lines < 2 || (!scratch.parse(payload, root) && root.is_object())) {
        scratch.items.emplace_back(payload);
        return;
    }
    for (size_t pos = 0; pos <= payload.size();) {
        size_t end = std::min(payload.find('\n', pos), payload.size());
        std::string_view line = payload.substr(pos, end - pos);
        if (!is_blank(line)) {
            if (scratch.items.size() == max_readings_) {
                scratch.items.clear();
                results.push_back({IOTS_INGEST_TOO_LARGE, kTooLarge,
                                   "payload has more than " + std::to_string(max_readings_) +
                                       " readings (max_readings)"});
                return;
            }
            scratch.items.emplace_back(line);
        }
        pos = end + 1;
    }
}

}  // namespace iotstream
