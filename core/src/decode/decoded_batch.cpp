// DecodedBatch: the columns behind the plugin-facing iots_batch_view_t, reused batch after batch.
#include "decode/decoder.hpp"

namespace iotstream {

DecodedBatch::DecodedBatch() {
    // Reserve one of everything so that every view pointer is non-null from the start.
    field_names_.reserve(1);
    field_pointers_.reserve(1);
    rejections_.reserve(16);
    reserve_rows(1, 0);
    publish_view();
}

void DecodedBatch::clear() noexcept {
    rejections_.clear();
    unescaped_ids_.clear();
    rows_with_unescaped_id_.clear();
    input_count_ = 0;
    view_.count = 0;
}

void DecodedBatch::refuse_rows(std::vector<RowRefusal> &&rows) {
    if (rows.empty()) return;
    const uint32_t count = view_.count;
    for (size_t i = 0; i < rows.size(); ++i)
        if (rows[i].row >= count || (i > 0 && rows[i].row <= rows[i - 1].row))
            throw Error(IOTS_ERR_INVALID_ARG, "refuse_rows: rows must be ascending rows of the batch");
    size_t next = 0;  // the next refusal
    uint32_t kept = 0;
    for (uint32_t row = 0; row < count; ++row) {
        if (next < rows.size() && rows[next].row == row) {
            RowRefusal &refusal = rows[next++];
            rejections_.push_back(Rejection{input_indices_[row], refusal.reason, std::move(refusal.detail)});
            continue;
        }
        if (kept != row) {
            for (auto &column : field_columns_) column[kept] = column[row];
            sensor_ids_[kept] = sensor_ids_[row];  // pointers since publish_view()
            event_time_ms_[kept] = event_time_ms_[row];
            streams_[kept] = streams_[row];
            offsets_[kept] = offsets_[row];
            payloads_[kept] = payloads_[row];
            anomaly_bits_[kept] = anomaly_bits_[row];
            input_indices_[kept] = input_indices_[row];
        }
        ++kept;
    }
    view_.count = kept;
}

void DecodedBatch::reserve_rows(size_t rows, size_t field_count) {
    rows = std::max<size_t>(rows, 1);
    if (field_columns_.size() != field_count) field_columns_.resize(field_count);
    auto grow = [rows](auto &column) {
        if (column.size() < rows) column.resize(rows);
    };
    for (auto &column : field_columns_) grow(column);
    grow(sensor_ids_);
    grow(event_time_ms_);
    grow(streams_);
    grow(offsets_);
    grow(payloads_);
    grow(anomaly_bits_);
    grow(input_indices_);
}

void DecodedBatch::publish_view() noexcept {
    // Escaped ids were stored as offsets into unescaped_ids_; it no longer moves now.
    for (const UnescapedId &id : rows_with_unescaped_id_)
        sensor_ids_[id.row].data = unescaped_ids_.data() + id.offset;
    std::memset(anomaly_bits_.data(), 0, sizeof(uint64_t) * view_.count);

    field_pointers_.clear();  // keeps capacity; field_count <= capacity reserved in decode()
    for (auto &column : field_columns_) field_pointers_.push_back(column.data());

    view_.struct_size = sizeof(iots_batch_view_t);
    view_.field_count = static_cast<uint32_t>(field_columns_.size());
    view_.field_names = field_names_.data();
    view_.fields = field_pointers_.data();
    view_.sensor_ids = sensor_ids_.data();
    view_.event_time_ms = event_time_ms_.data();
    view_.streams = streams_.data();
    view_.offsets = offsets_.data();
    view_.payloads = payloads_.data();
    view_.anomaly_bits = anomaly_bits_.data();
}

}  // namespace iotstream
