// The C API of the producer (iotstream.h: iots_producer_*).
#include <cstring>

#include "api/producer_handle.hpp"

using namespace iotstream;

namespace {

Producer &live(iots_producer_t *handle) {
    require_arg(handle, "producer");
    return *handle->producer;
}

std::string_view optional_topic(const char *topic) { return topic ? std::string_view(topic) : std::string_view(); }

}  // namespace

extern "C" {

IOTS_EXPORT iots_err_t iots_producer_new(const char *config_json, iots_delivery_cb_t dr_cb, void *dr_opaque,
                                         iots_producer_t **producerp, char *errstr, size_t errstr_size) {
    return guard(errstr, errstr_size, [&] {
        require_arg(producerp, "producerp");
        *producerp = nullptr;
        Json config = parse_config(config_json, "producer config");
        Producer::DeliveryCallback callback;
        if (dr_cb != nullptr)
            callback = [dr_cb, dr_opaque](const iots_delivery_report_t &report, const rd_kafka_message_t &) { dr_cb(dr_opaque, &report); };
        auto handle = std::make_unique<iots_producer_s>();
        handle->producer = std::make_unique<Producer>(config, std::move(callback));
        *producerp = handle.release();
    });
}

IOTS_EXPORT iots_err_t iots_producer_send_reading(iots_producer_t *producer, const char *topic,
                                                  const char *sensor_id, const char *data_json, char *errstr,
                                                  size_t errstr_size) {
    return guard(errstr, errstr_size, [&] {
        Producer &p = live(producer);
        require_arg(sensor_id, "sensor_id");
        require_arg(data_json, "data_json");
        p.send_reading(optional_topic(topic), sensor_id, data_json);
    });
}

IOTS_EXPORT iots_err_t iots_producer_send_reading_at(iots_producer_t *producer, const char *topic,
                                                     const char *sensor_id, const char *data_json,
                                                     int64_t timestamp_ms, char *errstr, size_t errstr_size) {
    return guard(errstr, errstr_size, [&] {
        Producer &p = live(producer);
        require_arg(sensor_id, "sensor_id");
        require_arg(data_json, "data_json");
        p.send_reading(optional_topic(topic), sensor_id, data_json, timestamp_ms);
    });
}

IOTS_EXPORT iots_err_t iots_producer_send(iots_producer_t *producer, const char *topic, const void *key,
                                          size_t key_len, const void *value, size_t value_len, void *msg_opaque,
                                          char *errstr, size_t errstr_size) {
    return guard(errstr, errstr_size, [&] {
        Producer &p = live(producer);
        if (key == nullptr && key_len > 0) throw Error(IOTS_ERR_INVALID_ARG, "key is NULL but key_len > 0");
        if (value == nullptr && value_len > 0)
            throw Error(IOTS_ERR_INVALID_ARG, "value is NULL but value_len > 0");
        p.send(optional_topic(topic), std::string_view(static_cast<const char *>(key), key_len),
               std::string_view(static_cast<const char *>(value), value_len), {}, msg_opaque);
    });
}

IOTS_EXPORT iots_err_t iots_producer_send_batch(iots_producer_t *producer, const char *topic,
                                                const iots_reading_t *readings, size_t count, size_t *succeeded,
                                                size_t *failed, char *errstr, size_t errstr_size) {
    if (succeeded) *succeeded = 0;
    if (failed) *failed = 0;
    return guard(errstr, errstr_size, [&]() -> iots_err_t {
        Producer &p = live(producer);
        if (readings == nullptr && count > 0) throw Error(IOTS_ERR_INVALID_ARG, "argument 'readings' is NULL");
        size_t ok = 0, bad = 0;
        iots_err_t first_error = IOTS_OK;
        std::string first_message;
        for (size_t i = 0; i < count; ++i) {
            try {
                require_arg(readings[i].sensor_id, "sensor_id");
                require_arg(readings[i].data_json, "data_json");
                p.send_reading(optional_topic(topic), readings[i].sensor_id, readings[i].data_json);
                ++ok;
            } catch (const Error &e) {
                ++bad;
                if (first_error == IOTS_OK) {
                    first_error = e.code();
                    first_message = "reading " + std::to_string(i) + ": " + e.what();
                }
            }
        }
        if (succeeded) *succeeded = ok;
        if (failed) *failed = bad;
        if (first_error != IOTS_OK) {
            write_errstr(errstr, errstr_size,
                         first_message + " (" + std::to_string(bad) + " of " + std::to_string(count) + " failed)");
            return first_error;
        }
        write_errstr(errstr, errstr_size, "");
        return IOTS_OK;
    });
}

IOTS_EXPORT iots_err_t iots_producer_flush(iots_producer_t *producer, int timeout_ms) {
    return guard(nullptr, 0, [&] {
        return live(producer).flush(timeout_ms) ? IOTS_OK : IOTS_ERR_TIMED_OUT;
    });
}

IOTS_EXPORT iots_err_t iots_producer_get_stats(iots_producer_t *producer, iots_producer_stats_t *stats) {
    return guard(nullptr, 0, [&] {
        Producer &p = live(producer);
        require_arg(stats, "stats");
        if (stats->struct_size < sizeof(iots_producer_stats_t))
            throw Error(IOTS_ERR_INVALID_ARG, "stats->struct_size is smaller than iots_producer_stats_t");
        size_t caller_size = stats->struct_size;
        *stats = p.stats();
        stats->struct_size = caller_size;
    });
}

IOTS_EXPORT iots_err_t iots_producer_close(iots_producer_t *producer, int timeout_ms) {
    return guard(nullptr, 0, [&] {
        require_arg(producer, "producer");
        std::unique_ptr<iots_producer_s> owned(producer);
        return owned->producer->close(timeout_ms) ? IOTS_OK : IOTS_ERR_TIMED_OUT;
    });
}

}  // extern "C"
