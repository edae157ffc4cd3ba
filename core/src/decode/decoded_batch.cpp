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
