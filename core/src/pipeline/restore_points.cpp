// The commit metadata's restore points (format in restore_points.hpp), and batch subsets for
// stages that skip replayed records.
#include "pipeline/restore_points.hpp"

#include <charconv>

namespace iotstream {

namespace {
constexpr std::string_view kVersion1 = "iots1";
constexpr std::string_view kLegacyPrefix = "iotstream:wm=";

bool parse_int(std::string_view text, int64_t &out) {
    if (text.empty()) return false;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && ptr == text.data() + text.size();
}

// A stage name as plugin.h allows it: [a-z0-9_]+ (so ':' and ',' never occur in one).
bool valid_stage_name(std::string_view name) {
    if (name.empty()) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}
}  // namespace

std::string format_restore_point(const RestorePoint &point) {
    std::string out(kVersion1);
    if (point.watermark_ms != IOTS_NO_VALUE) out += " wm=" + std::to_string(point.watermark_ms);
    if (point.read_through >= 0) out += " n=" + std::to_string(point.read_through);
    std::string stages;
    for (const auto &[name, offset] : point.stages) {
        if (!valid_stage_name(name) || offset < 0) continue;
        stages += stages.empty() ? " r=" : ",";
        stages += name + ":" + std::to_string(offset);
    }
    if (out.size() + stages.size() <= kMaxRestorePointBytes) out += stages;
    return out;
}

RestorePoint parse_restore_point(std::string_view metadata, RestorePointForm *form) {
    RestorePoint point;
    auto result = [&](RestorePointForm how) {
        if (form) *form = how;
        if (how == RestorePointForm::unrecognised) point = RestorePoint{};
        return point;
    };
    if (metadata.empty()) return result(RestorePointForm::none);
    if (metadata.starts_with(kLegacyPrefix))
        return result(parse_int(metadata.substr(kLegacyPrefix.size()), point.watermark_ms)
                          ? RestorePointForm::legacy
                          : RestorePointForm::unrecognised);
    size_t end = metadata.find(' ');
    if (metadata.substr(0, end) != kVersion1) return result(RestorePointForm::unrecognised);
    while (end != std::string_view::npos) {
        size_t begin = end + 1;
        end = metadata.find(' ', begin);
        std::string_view token = metadata.substr(begin, end == std::string_view::npos ? end : end - begin);
        size_t eq = token.find('=');
        if (eq == std::string_view::npos) return result(RestorePointForm::unrecognised);
        std::string_view key = token.substr(0, eq), value = token.substr(eq + 1);
        if (key == "wm") {
            if (!parse_int(value, point.watermark_ms) || point.watermark_ms == IOTS_NO_VALUE)
                return result(RestorePointForm::unrecognised);
        } else if (key == "n") {
            if (!parse_int(value, point.read_through) || point.read_through < 0)
                return result(RestorePointForm::unrecognised);
        } else if (key == "r") {
            for (;;) {  // <stage>:<offset>, comma-separated, none empty
                size_t comma = value.find(',');
                std::string_view entry = value.substr(0, comma);
                size_t colon = entry.find(':');
                int64_t offset = -1;
                if (colon == std::string_view::npos || !valid_stage_name(entry.substr(0, colon)) ||
                    !parse_int(entry.substr(colon + 1), offset) || offset < 0)
                    return result(RestorePointForm::unrecognised);
                point.stages[std::string(entry.substr(0, colon))] = offset;
                if (comma == std::string_view::npos) break;
                value = value.substr(comma + 1);
            }
        }  // other keys: from a later 1.x, ignored
    }
    return result(RestorePointForm::v1);
}

const iots_batch_view_t &BatchSubset::build(const iots_batch_view_t &batch) {
    const size_t n = rows_.size();
    columns_.resize(batch.field_count);
    column_pointers_.resize(batch.field_count);
    for (uint32_t f = 0; f < batch.field_count; ++f) {
        if (batch.fields[f] == nullptr) {
            column_pointers_[f] = nullptr;
            continue;
        }
        columns_[f].resize(n);
        for (size_t j = 0; j < n; ++j) columns_[f][j] = batch.fields[f][rows_[j]];
        column_pointers_[f] = columns_[f].data();
    }
    auto gather = [&](auto &out, const auto *in) {
        out.resize(n);
        for (size_t j = 0; j < n; ++j) out[j] = in[rows_[j]];
        return out.data();
    };
    view_ = batch;
    view_.count = static_cast<uint32_t>(n);
    view_.fields = column_pointers_.data();
    view_.sensor_ids = gather(sensor_ids_, batch.sensor_ids);
    view_.event_time_ms = gather(event_times_, batch.event_time_ms);
    view_.streams = gather(streams_, batch.streams);
    view_.offsets = gather(offsets_, batch.offsets);
    view_.payloads = gather(payloads_, batch.payloads);
    view_.anomaly_bits = batch.anomaly_bits ? gather(anomaly_bits_, batch.anomaly_bits) : nullptr;
    return view_;
}

}  // namespace iotstream
