/*
 * iotstream.h: the whole public C API of libiotstream.
 *
 * iotstream moves IoT sensor telemetry through Apache Kafka and analyses it as it flows.
 * This header is C99, has no dependency beyond the C standard library, and is the only
 * contract between libiotstream and the programs that load it (many dlopen() it).
 *
 * Conventions, for every function below:
 *  - Handles are opaque. Whoever receives a handle from a *_new() owns it and releases it with
 *    the matching *_destroy() or *_close().
 *  - Functions that can fail return iots_err_t and, where they take (errstr, errstr_size),
 *    write a NUL-terminated, human-readable reason into that caller-owned buffer (truncated
 *    to fit; errstr may be NULL). There is no per-thread "last error".
 *  - Strings passed in are borrowed for the duration of the call only; the library copies
 *    what it keeps. Strings returned as `const char *` are owned by the library; their
 *    lifetime is stated per function.
 *  - Configuration is a JSON object (UTF-8 text). Unknown keys are rejected by name. Keys
 *    under "kafka" (nested object "kafka": {"compression.type": "lz4"}, or flat
 *    "kafka.compression.type") are passed verbatim to librdkafka; when librdkafka refuses one,
 *    its own message is returned.
 *  - No C++ exception ever crosses this boundary: every entry point catches and converts.
 *  - Callbacks registered by the caller run on library threads, as stated per callback; they
 *    must not call *_destroy() on the handle that invoked them.
 */
#ifndef IOTSTREAM_H
#define IOTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define IOTS_EXPORT __attribute__((visibility("default")))
#else
#define IOTS_EXPORT
#endif

/* ------------------------------------------------------------------------------------------
 * Versions
 * ---------------------------------------------------------------------------------------- */

/** Library version as hex MM.mm.rr.xx (major, minor, revision, pre-release 0xff = final). */
#define IOTS_VERSION 0x000100ff
/** ABI of this header. A different major is incompatible; minors only append. */
#define IOTS_ABI_MAJOR 1
#define IOTS_ABI_MINOR 7

/** Version of the library actually loaded, in the IOTS_VERSION format. Thread-safe. */
IOTS_EXPORT int iots_version(void);
/** Same as a string, e.g. "0.1.0". Static storage; thread-safe. */
IOTS_EXPORT const char *iots_version_str(void);

/* ------------------------------------------------------------------------------------------
 * Errors. Local errors are negative; IOTS_OK is 0. Values never change once released.
 * ---------------------------------------------------------------------------------------- */
typedef enum iots_err_e {
    IOTS_OK = 0,
    IOTS_ERR_INVALID_ARG = -1,   /**< a NULL or out-of-range argument */
    IOTS_ERR_CONFIG = -2,        /**< the configuration was refused; errstr names the key */
    IOTS_ERR_KAFKA = -3,         /**< librdkafka reported an error; errstr carries its text */
    IOTS_ERR_QUEUE_FULL = -4,    /**< the producer queue stayed full for the whole timeout */
    IOTS_ERR_TIMED_OUT = -5,     /**< the operation did not finish within its timeout */
    IOTS_ERR_STATE = -6,         /**< not allowed in the handle's current state */
    IOTS_ERR_NO_MEMORY = -7,     /**< an allocation failed */
    IOTS_ERR_INTERNAL = -8,      /**< an unexpected failure inside the library (a bug) */
    IOTS_ERR_PLUGIN = -9,        /**< a plugin was rejected or failed; errstr names it */
    IOTS_ERR_NOT_FOUND = -10,    /**< the named thing does not exist */
    IOTS_ERR_BUFFER_TOO_SMALL = -11, /**< the caller's buffer is too small; see *needed */
    IOTS_ERR_HANDLER = -12,      /**< the caller's handler returned failure */
    IOTS_ERR_UNSUPPORTED = -13,  /**< the ABI version asked for is not served */
    IOTS_ERR__END = -14          /**< one past the last code; for bindings' tables */
} iots_err_t;

/** Short fixed description of an error code. Static storage; never NULL; thread-safe. */
IOTS_EXPORT const char *iots_err_str(iots_err_t err);
/** Symbolic name of an error code, e.g. "IOTS_ERR_CONFIG". Static storage; never NULL. */
IOTS_EXPORT const char *iots_err_name(iots_err_t err);

/* ------------------------------------------------------------------------------------------
 * Logging. The library logs through spdlog to stderr unless a callback is installed.
 * ---------------------------------------------------------------------------------------- */
typedef enum iots_log_level_e {
    IOTS_LOG_TRACE = 0,
    IOTS_LOG_DEBUG = 1,
    IOTS_LOG_INFO = 2,
    IOTS_LOG_WARN = 3,
    IOTS_LOG_ERROR = 4,
    IOTS_LOG_CRITICAL = 5,
    IOTS_LOG_OFF = 6
} iots_log_level_t;

/**
 * Receives one log line. `component` (e.g. "producer", "plugin.window") and `message` are
 * borrowed for the call only. Runs on whichever library thread logged; may run concurrently
 * from several threads, so it must be thread-safe. It must not call back into iotstream.
 */
typedef void (*iots_log_cb_t)(void *opaque, iots_log_level_t level, const char *component,
                              const char *message);

/** Sets the minimum level logged, process-wide. Thread-safe; takes effect at once. */
IOTS_EXPORT iots_err_t iots_log_set_level(iots_log_level_t level);
/** Current minimum level. Thread-safe. */
IOTS_EXPORT iots_log_level_t iots_log_get_level(void);
/**
 * Routes all library logs to `cb` (NULL restores stderr). `opaque` is passed back untouched
 * and stays owned by the caller, who keeps it valid until the callback is replaced.
 * Thread-safe; once this returns, the previous callback is not called again.
 */
IOTS_EXPORT void iots_log_set_callback(iots_log_cb_t cb, void *opaque);

/* ------------------------------------------------------------------------------------------
 * Embedded broker: librdkafka's mock cluster, a real Kafka-protocol broker on loopback.
 * For tests, demos and notebooks; production points bootstrap.servers at a real cluster.
 * ---------------------------------------------------------------------------------------- */
typedef struct iots_broker_s iots_broker_t;

/**
 * Starts an embedded broker. Config keys:
 *   "brokers": number of brokers (default 1, 1..16);
 *   "topics": [{"name": "iot-readings", "partitions": 8}, ...] created up front
 *             (default: the five iotstream topics with 8 partitions each; [] for none).
 *   Other topics are created on first use with the mock cluster's default partition count.
 * On success *brokerp owns a new handle. Thread-safe.
 */
IOTS_EXPORT iots_err_t iots_broker_new(const char *config_json, iots_broker_t **brokerp,
                                       char *errstr, size_t errstr_size);
/** Bootstrap servers ("127.0.0.1:PORT,..."). Owned by the broker; valid until destroy. */
IOTS_EXPORT const char *iots_broker_bootstrap(const iots_broker_t *broker);
/** Creates a topic; IOTS_ERR_KAFKA if it exists with another partition count. Thread-safe. */
IOTS_EXPORT iots_err_t iots_broker_create_topic(iots_broker_t *broker, const char *topic,
                                                int partitions, char *errstr,
                                                size_t errstr_size);
/** Fault injection: takes broker `broker_id` (1-based) down (down=1) or up (0). Thread-safe. */
IOTS_EXPORT iots_err_t iots_broker_set_down(iots_broker_t *broker, int broker_id, int down);
/** Fault injection: adds `rtt_ms` round-trip time to broker `broker_id`. Thread-safe. */
IOTS_EXPORT iots_err_t iots_broker_set_rtt(iots_broker_t *broker, int broker_id, int rtt_ms);
/**
 * Fault injection: the next `count` requests of Kafka API `api_key` (0 = Produce,
 * 1 = Fetch, 8 = OffsetCommit, ...) fail with Kafka error code `kafka_error`
 * (e.g. 6 NOT_LEADER_OR_FOLLOWER, 7 REQUEST_TIMED_OUT). Thread-safe.
 */
IOTS_EXPORT iots_err_t iots_broker_push_request_errors(iots_broker_t *broker, int api_key,
                                                       int count, int kafka_error);
/**
 * Fault injection: makes broker `broker_id` the leader of `topic`'s partition `partition`, or
 * leaves the partition without a leader (broker_id -1) until it is set again. Clients learn it
 * from NOT_LEADER_OR_FOLLOWER / LEADER_NOT_AVAILABLE answers and a metadata refresh; the
 * partition's records stay. Thread-safe. Since ABI 1.6.
 */
IOTS_EXPORT iots_err_t iots_broker_set_partition_leader(iots_broker_t *broker, const char *topic,
                                                        int partition, int broker_id);
/**
 * Fault injection: moves the coordinator of consumer group `key` (`kind` "group") or of
 * transactional id `key` (`kind` "transaction") to broker `broker_id`. Clients learn it from
 * NOT_COORDINATOR answers. Thread-safe. Since ABI 1.6.
 */
IOTS_EXPORT iots_err_t iots_broker_set_coordinator(iots_broker_t *broker, const char *kind,
                                                   const char *key, int broker_id);
/** Stops the broker and frees the handle. Clients still connected see it go away. */
IOTS_EXPORT void iots_broker_destroy(iots_broker_t *broker);

/* ------------------------------------------------------------------------------------------
 * Producer
 * ---------------------------------------------------------------------------------------- */
typedef struct iots_producer_s iots_producer_t;

/** Outcome of one message, passed to the delivery callback. Borrowed for the call only. */
typedef struct iots_delivery_report_s {
    size_t struct_size;   /**< sizeof(iots_delivery_report_t) as built into the library */
    iots_err_t err;       /**< IOTS_OK when the broker acknowledged the message */
    const char *errstr;   /**< librdkafka's reason when err != IOTS_OK, else "" */
    const char *topic;
    int32_t partition;    /**< -1 if never assigned */
    int64_t offset;       /**< -1 if unknown (failed, or acks=0) */
    const void *key;
    size_t key_len;
    void *msg_opaque;     /**< what the caller passed with the message (raw sends); else NULL */
} iots_delivery_report_t;

/**
 * Delivery callback. Runs on the producer's own delivery thread, one report at a time, never
 * concurrently with itself. `opaque` stays owned by the caller.
 */
typedef void (*iots_delivery_cb_t)(void *opaque, const iots_delivery_report_t *report);

/** One reading for iots_producer_send_batch(). Both strings borrowed for the call. */
typedef struct iots_reading_s {
    const char *sensor_id;  /**< the key; must be non-empty */
    const char *data_json;  /**< a JSON object: the envelope's "data" */
} iots_reading_t;

/** Counters. Monotonic except queue_depth. */
typedef struct iots_producer_stats_s {
    size_t struct_size;     /**< set by the caller to sizeof(iots_producer_stats_t) */
    uint64_t sent;          /**< accepted into the local queue */
    uint64_t delivered;     /**< acknowledged by the broker */
    uint64_t failed;        /**< reported failed (after librdkafka's retries) */
    uint64_t retried;       /**< request retries and message retransmissions (librdkafka statistics) */
    uint64_t bytes;         /**< value bytes accepted */
    uint64_t queue_full;    /**< sends refused after waiting queue_full_timeout_ms */
    int64_t queue_depth;    /**< messages accepted but not yet delivered or failed */
} iots_producer_stats_t;

/**
 * Creates a producer. Config keys (defaults follow the seed's producer):
 *   "topic": default topic for readings ("iot-readings");
 *   "queue_full_timeout_ms": how long a send waits for room before IOTS_ERR_QUEUE_FULL (5000);
 *   "kafka": librdkafka properties. Defaults: linger.ms 10, compression.type snappy,
 *            acks 1, retries 3, max.in.flight 5, queue.buffering.max.kbytes 32768,
 *            batch.size 16384; enable.idempotence may be set to true.
 * `dr_cb` (may be NULL) is called once for every accepted message. On success *producerp owns
 * a new handle. All send functions are thread-safe.
 */
IOTS_EXPORT iots_err_t iots_producer_new(const char *config_json, iots_delivery_cb_t dr_cb,
                                         void *dr_opaque, iots_producer_t **producerp,
                                         char *errstr, size_t errstr_size);

/**
 * Sends one reading wrapped in the seed's envelope:
 *   {"sensor_id": ..., "timestamp": ISO-8601 UTC now, "data": <data_json>, "message_id": UUIDv4}
 * keyed by sensor_id (murmur2 partitioning, as the Java client). `topic` NULL means the
 * default topic. `data_json` must be a JSON object (checked). Waits up to
 * queue_full_timeout_ms for queue room, then returns IOTS_ERR_QUEUE_FULL.
 */
IOTS_EXPORT iots_err_t iots_producer_send_reading(iots_producer_t *producer, const char *topic,
                                                  const char *sensor_id, const char *data_json,
                                                  char *errstr, size_t errstr_size);

/**
 * As iots_producer_send_reading(), with the envelope's "timestamp" given as epoch milliseconds
 * (UTC, years 0000..9999) instead of now: for replaying recorded readings and for tests with known
 * event times. Since ABI 1.1.
 */
IOTS_EXPORT iots_err_t iots_producer_send_reading_at(iots_producer_t *producer, const char *topic,
                                                     const char *sensor_id, const char *data_json,
                                                     int64_t timestamp_ms, char *errstr,
                                                     size_t errstr_size);

/** Sends raw bytes (copied). key may be NULL. msg_opaque returns in the delivery report. */
IOTS_EXPORT iots_err_t iots_producer_send(iots_producer_t *producer, const char *topic,
                                          const void *key, size_t key_len, const void *value,
                                          size_t value_len, void *msg_opaque, char *errstr,
                                          size_t errstr_size);

/**
 * Sends `count` readings (as iots_producer_send_reading). Stops at nothing: every reading is
 * tried; *succeeded and *failed (either may be NULL) count the outcomes of enqueueing.
 * Returns IOTS_OK when all were accepted, else the first error (errstr describes it).
 */
IOTS_EXPORT iots_err_t iots_producer_send_batch(iots_producer_t *producer, const char *topic,
                                                const iots_reading_t *readings, size_t count,
                                                size_t *succeeded, size_t *failed, char *errstr,
                                                size_t errstr_size);

/** Waits until every accepted message is delivered or failed. IOTS_ERR_TIMED_OUT otherwise. */
IOTS_EXPORT iots_err_t iots_producer_flush(iots_producer_t *producer, int timeout_ms);

/** Reads the counters into *stats (stats->struct_size must be set). Thread-safe. */
IOTS_EXPORT iots_err_t iots_producer_get_stats(iots_producer_t *producer,
                                               iots_producer_stats_t *stats);

/**
 * Flushes (up to timeout_ms), then frees the producer. Messages still undelivered at the
 * timeout are reported failed through the delivery callback before this returns, so nothing
 * accepted goes unaccounted. Returns IOTS_ERR_TIMED_OUT in that case, IOTS_OK otherwise.
 * The handle is freed either way.
 */
IOTS_EXPORT iots_err_t iots_producer_close(iots_producer_t *producer, int timeout_ms);

/* ------------------------------------------------------------------------------------------
 * Consumer groups
 * ---------------------------------------------------------------------------------------- */
typedef struct iots_consumer_s iots_consumer_t;
typedef struct iots_batch_s iots_batch_t; /* records from one poll; owned by the caller */

/** One consumed record. Borrowed from its batch; valid until the batch is destroyed. */
typedef struct iots_record_s {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;   /**< the Kafka record timestamp, -1 if none */
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
} iots_record_t;

typedef struct iots_topic_partition_s {
    const char *topic;
    int32_t partition;
} iots_topic_partition_t;

typedef enum iots_rebalance_e { IOTS_REBALANCE_ASSIGN = 1, IOTS_REBALANCE_REVOKE = 2 } iots_rebalance_t;

/**
 * Called on the polling thread (inside iots_consumer_poll_batch/process) when partitions are
 * added to or taken from this member (cooperative-sticky: incremental). `partitions` is
 * borrowed for the call.
 */
typedef void (*iots_rebalance_cb_t)(void *opaque, iots_rebalance_t kind,
                                    const iots_topic_partition_t *partitions, size_t count);

/** Handler for iots_consumer_process(): return 0 on success; any other value fails the batch. */
typedef int (*iots_batch_handler_t)(void *opaque, const iots_batch_t *batch);

typedef struct iots_partition_lag_s {
    const char *topic;      /**< owned by the consumer; valid until its next lag call */
    int32_t partition;
    int64_t position;       /**< next offset this member will read; -1 unknown */
    int64_t committed;      /**< last committed offset; -1 none */
    int64_t high_watermark; /**< end of the partition; -1 unknown */
    int64_t lag;            /**< high_watermark - position; -1 unknown */
} iots_partition_lag_t;

typedef struct iots_consumer_stats_s {
    size_t struct_size;     /**< set by the caller */
    uint64_t consumed;      /**< records handed to the caller */
    uint64_t committed;     /**< records covered by successful commits */
    uint64_t commits;       /**< successful commit calls */
    uint64_t redelivered;   /**< records rewound after a failed handler */
    uint64_t bytes;         /**< value bytes consumed */
    uint64_t rebalances;    /**< assign + revoke events */
    int64_t queue_depth;    /**< records prefetched locally, not yet polled */
} iots_consumer_stats_t;

/**
 * Creates a group member. Config keys:
 *   "group_id" (required), "topics": [names] (subscribed at once if given),
 *   "auto_offset_reset": "earliest" (default) or "latest",
 *   "kafka": librdkafka properties. Defaults: partition.assignment.strategy
 *            cooperative-sticky, enable.auto.commit false, and prefetch raised
 *            (queued.min.messages 200000, queued.max.messages.kbytes 262144).
 * Not thread-safe: use one handle from one thread at a time (stats and lag excepted).
 */
IOTS_EXPORT iots_err_t iots_consumer_new(const char *config_json, iots_rebalance_cb_t rebalance_cb,
                                         void *rebalance_opaque, iots_consumer_t **consumerp,
                                         char *errstr, size_t errstr_size);
/** Subscribes to `count` topics (replacing any previous subscription). */
IOTS_EXPORT iots_err_t iots_consumer_subscribe(iots_consumer_t *consumer,
                                               const char *const *topics, size_t count,
                                               char *errstr, size_t errstr_size);
/**
 * Polls up to `max_records` records, waiting up to timeout_ms for the first. On IOTS_OK,
 * *batchp owns a new batch (possibly empty) to free with iots_batch_destroy().
 */
IOTS_EXPORT iots_err_t iots_consumer_poll_batch(iots_consumer_t *consumer, size_t max_records,
                                                int timeout_ms, iots_batch_t **batchp,
                                                char *errstr, size_t errstr_size);
/** Number of records in a batch. */
IOTS_EXPORT size_t iots_batch_count(const iots_batch_t *batch);
/** Record i of a batch (NULL when out of range). Borrowed from the batch. */
IOTS_EXPORT const iots_record_t *iots_batch_record(const iots_batch_t *batch, size_t index);
/** Frees a batch. NULL is ignored. */
IOTS_EXPORT void iots_batch_destroy(iots_batch_t *batch);
/**
 * Synchronously commits, for every partition in `batch`, the offset after its last record
 * (only for partitions this member still owns).
 */
IOTS_EXPORT iots_err_t iots_consumer_commit_batch(iots_consumer_t *consumer,
                                                  const iots_batch_t *batch, char *errstr,
                                                  size_t errstr_size);
/**
 * Polls one batch, calls handler(opaque, batch), and commits the batch only if the handler
 * returned 0. If it failed, the member rewinds every partition of the batch to its first
 * record, so the same records are delivered again, and returns IOTS_ERR_HANDLER.
 * *processed (may be NULL) receives the number of records handled.
 */
IOTS_EXPORT iots_err_t iots_consumer_process(iots_consumer_t *consumer, size_t max_records,
                                             int timeout_ms, iots_batch_handler_t handler,
                                             void *opaque, size_t *processed, char *errstr,
                                             size_t errstr_size);
/** Pauses fetching for every assigned partition (backpressure). */
IOTS_EXPORT iots_err_t iots_consumer_pause(iots_consumer_t *consumer);
/** Resumes fetching for every assigned partition. */
IOTS_EXPORT iots_err_t iots_consumer_resume(iots_consumer_t *consumer);
/**
 * Per-partition lag of the current assignment. Writes up to `capacity` entries into `out`,
 * and the number of assigned partitions into *count (call with capacity 0 to size `out`).
 */
IOTS_EXPORT iots_err_t iots_consumer_lag(iots_consumer_t *consumer, iots_partition_lag_t *out,
                                         size_t capacity, size_t *count, int timeout_ms);
/** Reads the counters into *stats (stats->struct_size must be set). Thread-safe. */
IOTS_EXPORT iots_err_t iots_consumer_get_stats(iots_consumer_t *consumer,
                                               iots_consumer_stats_t *stats);
/** Leaves the group cleanly (revoking partitions) and frees the handle. */
IOTS_EXPORT iots_err_t iots_consumer_close(iots_consumer_t *consumer);

/* ------------------------------------------------------------------------------------------
 * Pipelines: consume -> decode -> plugin stages -> output topics, on their own threads.
 * ---------------------------------------------------------------------------------------- */
typedef struct iots_pipeline_s iots_pipeline_t;

/**
 * Creates a pipeline from a JSON document (see docs/pipeline.md for every key). Loads the
 * plugins and validates all configuration; nothing runs until iots_pipeline_start().
 */
IOTS_EXPORT iots_err_t iots_pipeline_new(const char *config_json, iots_pipeline_t **pipelinep,
                                         char *errstr, size_t errstr_size);
/** Starts the pipeline's threads; returns at once. */
IOTS_EXPORT iots_err_t iots_pipeline_start(iots_pipeline_t *pipeline, char *errstr,
                                           size_t errstr_size);
/**
 * Bounded mode (replay): processes the input from its start position to the end offsets
 * present now, closes all windows, flushes outputs, commits and returns. Blocking.
 */
IOTS_EXPORT iots_err_t iots_pipeline_run_bounded(iots_pipeline_t *pipeline, int timeout_ms,
                                                 char *errstr, size_t errstr_size);
/** iots_pipeline_stop's close_windows: as the pipeline document's stop.close_windows says. Since ABI 1.2. */
#define IOTS_STOP_AS_CONFIGURED (-1)
/**
 * Stops a started pipeline: stops consuming, flushes outputs, commits and leaves the group.
 * Blocking. close_windows=0 (a resumable stop) leaves open windows to the partitions' next
 * owner, which rebuilds them by replay; close_windows=1 closes and emits every open window
 * first, and the commit's watermark covers them (for runs whose input does not outlive them:
 * bounded runs, a broker inside this process); IOTS_STOP_AS_CONFIGURED follows the pipeline
 * document (docs/pipeline.md, "Stopping").
 * If the pipeline's thread had already stopped on an error, leaves the group and returns that
 * error. Thread-safe: the work is done once; a later or concurrent call returns IOTS_OK once
 * the first call has finished.
 */
IOTS_EXPORT iots_err_t iots_pipeline_stop(iots_pipeline_t *pipeline, int close_windows,
                                          int timeout_ms, char *errstr, size_t errstr_size);
/**
 * Writes the pipeline's counters and state as a JSON object into buf (NUL-terminated).
 * "running" is true only while the processing thread runs: false once it stopped, by
 * iots_pipeline_stop() or by an error ("failed": true, "error" says which).
 * If buf_size is too small returns IOTS_ERR_BUFFER_TOO_SMALL and sets *needed (may be NULL).
 * Thread-safe.
 */
IOTS_EXPORT iots_err_t iots_pipeline_stats_json(iots_pipeline_t *pipeline, char *buf,
                                                size_t buf_size, size_t *needed);
/** Stops (if running, without closing windows) and frees the pipeline. */
IOTS_EXPORT void iots_pipeline_destroy(iots_pipeline_t *pipeline);

/**
 * One output record the broker acknowledged, as the output tap sees it. Only the library
 * creates these, so fields may be appended in later minors (read struct_size). Since ABI 1.4.
 */
typedef struct iots_output_record_s {
    size_t struct_size;  /**< sizeof as built into the library */
    const char *output;  /**< the output's name: "windows", "aggregates", "alerts", "dlq", or
                              another name a stage emits to (docs/pipeline.md, "outputs") */
    const char *topic;   /**< the topic it was delivered to */
    const char *key;     /**< not NUL-terminated; NULL when the record has no key */
    size_t key_len;
    const char *value;   /**< not NUL-terminated (JSON for the shipped outputs) */
    size_t value_len;
} iots_output_record_t;

/**
 * The output tap: called once for every output record the broker acknowledged (window
 * results, aggregates, alerts, dead letters), for dashboards and notebooks. It runs on one of
 * the library's internal threads: it must return quickly, must not block, and must not call
 * into this pipeline. `record` and the bytes it points at are valid only during the call; the
 * host copies what it keeps. A record delivered again after a restart is tapped again.
 */
typedef void (*iots_output_tap_fn)(void *opaque, const iots_output_record_t *record);
/**
 * Installs `tap` (NULL removes it) with `opaque` passed back on every call. Only before
 * iots_pipeline_start() or iots_pipeline_run_bounded(): IOTS_ERR_STATE after. Since ABI 1.4.
 */
IOTS_EXPORT iots_err_t iots_pipeline_set_output_tap(iots_pipeline_t *pipeline, iots_output_tap_fn tap,
                                                    void *opaque, char *errstr, size_t errstr_size);

/**
 * Describes the plugins in a folder (or, when dir is NULL, $IOTSTREAM_PLUGIN_DIR or the
 * built-in folder) as a JSON object {"dir", "plugins": [...], "rejected": [...]}: for each
 * plugin its name, kind, version, description, file and config keys with type, default and
 * help; for each file that failed to load, the file and the reason. Loads the libraries but
 * creates no instance. Thread-safe.
 * Buffer contract as iots_pipeline_stats_json().
 */
IOTS_EXPORT iots_err_t iots_plugins_describe_json(const char *dir, char *buf, size_t buf_size,
                                                  size_t *needed, char *errstr,
                                                  size_t errstr_size);

/* ------------------------------------------------------------------------------------------
 * Load generator: the seed's HighThroughputProducer, paced by batches at a target rate.
 * ---------------------------------------------------------------------------------------- */
typedef struct iots_loadgen_stats_s {
    size_t struct_size;     /**< set by the caller */
    uint64_t sent;          /**< readings accepted by the producer */
    uint64_t delivered;     /**< acknowledged */
    uint64_t failed;        /**< refused or reported failed */
    uint64_t anomalous;     /**< readings generated outside the seed's normal ranges */
    double elapsed_s;       /**< wall time of the run so far */
    double achieved_rate;   /**< sent / elapsed_s */
} iots_loadgen_stats_t;

typedef struct iots_loadgen_s iots_loadgen_t;

/**
 * Creates a load generator. Config keys: "rate" (msgs/s, 0 = as fast as possible),
 * "duration_s" and/or "count" (stop at whichever comes first; one is required),
 * "sensors" (100000), "threads" (2), "anomaly_share" (0.01), "seed" (1),
 * "topic" ("iot-readings"), "producer": a producer config object.
 */
IOTS_EXPORT iots_err_t iots_loadgen_new(const char *config_json, iots_loadgen_t **loadgenp,
                                        char *errstr, size_t errstr_size);
/** Starts generating on the generator's own threads; returns at once. */
IOTS_EXPORT iots_err_t iots_loadgen_start(iots_loadgen_t *loadgen, char *errstr,
                                          size_t errstr_size);
/** Blocks until the run ends (duration or count reached) or timeout_ms passes. */
IOTS_EXPORT iots_err_t iots_loadgen_wait(iots_loadgen_t *loadgen, int timeout_ms);
/** Asks the run to stop early; returns at once. */
IOTS_EXPORT void iots_loadgen_stop(iots_loadgen_t *loadgen);
/** Reads the counters (thread-safe, any time). */
IOTS_EXPORT iots_err_t iots_loadgen_get_stats(iots_loadgen_t *loadgen,
                                              iots_loadgen_stats_t *stats);
/** Stops, flushes the producer and frees the generator. */
IOTS_EXPORT void iots_loadgen_destroy(iots_loadgen_t *loadgen);

/* ------------------------------------------------------------------------------------------
 * Ingestion: the service behind a device gateway (HTTP, MQTT, or the caller's own). Since ABI 1.2.
 * A device's payload is one reading, a JSON array of readings, or NDJSON (one per line):
 *   {"sensor_id": "sensor_3_17", "timestamp": "2026-11-26T23:34:43.123Z", "data": {...}}
 * "sensor_id" defaults to the device id, "timestamp" to now; other keys are not carried.
 * Each reading is checked with the pipeline decoder's rules, charged to the device's token
 * bucket, wrapped in the seed's envelope (fresh "message_id") and produced keyed by sensor_id.
 * ---------------------------------------------------------------------------------------- */
typedef struct iots_ingest_s iots_ingest_t;
typedef struct iots_ingest_reply_s iots_ingest_reply_t; /* results of one submit; caller-owned */

/** What became of one reading. Values never change once released. */
typedef enum iots_ingest_status_e {
    IOTS_INGEST_ACCEPTED = 0,     /**< handed to the producer (delivery is the producer's) */
    IOTS_INGEST_INVALID = 1,      /**< refused by the decoder's rules; reason says which */
    IOTS_INGEST_RATE_LIMITED = 2, /**< the device's bucket is empty; see retry_after_ms */
    IOTS_INGEST_BACKPRESSURE = 3, /**< the producer queue stayed full or could not take it; retry later */
    IOTS_INGEST_TOO_LARGE = 4,    /**< the reading, the payload or its reading count is over a limit */
    IOTS_INGEST_FORBIDDEN = 5,    /**< the payload names another device's sensor_id: nothing in it is produced */
    IOTS_INGEST__END = 6          /**< one past the last status; for bindings' tables */
} iots_ingest_status_t;

/**
 * One reading's result, borrowed from its reply (valid until iots_ingest_reply_destroy()).
 * Only the library creates these, so fields may be appended in later minors.
 */
typedef struct iots_ingest_item_s {
    iots_ingest_status_t status;
    /** Static storage. "" when accepted; for INVALID the decoder's reason (not_json,
     *  missing_field, wrong_type, bad_timestamp, non_finite, ...) or "producer_refused"
     *  (librdkafka refused it for good); else "rate_limited", "queue_full", "send_failed"
     *  (BACKPRESSURE: librdkafka could not take it now), "too_large" or "foreign_sensor_id". */
    const char *reason;
    /** Human-readable detail naming the field or limit; "" when accepted. Owned by the reply. */
    const char *detail;
    /** RATE_LIMITED: milliseconds until the device's bucket holds a token again; else 0. */
    int64_t retry_after_ms;
} iots_ingest_item_t;

/** Counters, per reading except `payloads`. Monotonic except devices_tracked. */
typedef struct iots_ingest_stats_s {
    size_t struct_size;            /**< set by the caller to sizeof(iots_ingest_stats_t) */
    uint64_t payloads;             /**< iots_ingest_submit() calls */
    uint64_t accepted;
    uint64_t invalid;
    uint64_t rate_limited;
    uint64_t backpressure;
    uint64_t too_large;
    uint64_t forbidden;
    uint64_t devices_tracked;      /**< token buckets held now (at most max_devices) */
    uint64_t buckets_evicted_idle; /**< buckets dropped once refilled (no effect on limits) */
    uint64_t buckets_evicted_early; /**< dropped while refilling because max_devices was reached */
} iots_ingest_stats_t;

/**
 * Creates an ingestion handle. Config keys:
 *   "topic": where readings go ("iot-readings");
 *   "rate", "burst": each device's token bucket, readings/s (10) and capacity (20);
 *   "devices": {"<device id>": {"rate": r, "burst": b}, ...} per-device overrides;
 *   "max_devices": token buckets kept at most (1000000; about 16-21 bytes each);
 *   "max_payload_bytes" (1048576), "max_readings" per payload (10000);
 *   "sensor_ids": "own" (default: a reading's sensor_id must be the device id) or "any"
 *                 (the caller has already authorised them);
 *   "dead_letter_topic": when set, invalid and too-large readings are also produced there
 *                 with headers iotstream.reason/iotstream.detail/iotstream.source (default: none);
 *   "decoder": the pipeline's decoder schema ({"fields", "required", "max_record_bytes"});
 *   "producer": a producer config, used only when `producer` is NULL (then
 *               queue_full_timeout_ms defaults to 0: a full queue answers BACKPRESSURE at once).
 * `producer` (may be NULL) is borrowed: it must outlive the handle; its delivery callback and
 * stats see the readings. On success *ingestp owns a new handle. Thread-safe.
 */
IOTS_EXPORT iots_err_t iots_ingest_new(const char *config_json, iots_producer_t *producer,
                                       iots_ingest_t **ingestp, char *errstr, size_t errstr_size);
/**
 * Ingests one payload (payload_len bytes, borrowed for the call; need not be NUL-terminated)
 * from device `device_id` (non-empty, borrowed). On IOTS_OK *replyp owns a new reply with one
 * item per reading, in payload order (a payload that cannot be split into readings, or is over
 * a limit, is one item). A producer's refusal is that reading's result, never the call's:
 * errors are reserved for bad arguments and a closed producer.
 * Thread-safe: call it from as many threads as the gateway serves connections.
 */
IOTS_EXPORT iots_err_t iots_ingest_submit(iots_ingest_t *ingest, const char *device_id,
                                          const void *payload, size_t payload_len,
                                          iots_ingest_reply_t **replyp, char *errstr,
                                          size_t errstr_size);
/** Number of items in a reply. */
IOTS_EXPORT size_t iots_ingest_reply_count(const iots_ingest_reply_t *reply);
/** Item i of a reply (NULL when out of range). Borrowed from the reply. */
IOTS_EXPORT const iots_ingest_item_t *iots_ingest_reply_item(const iots_ingest_reply_t *reply,
                                                             size_t index);
/** Frees a reply. NULL is ignored. */
IOTS_EXPORT void iots_ingest_reply_destroy(iots_ingest_reply_t *reply);
/** Symbolic name of a status, e.g. "accepted", "rate_limited". Static storage; never NULL. */
IOTS_EXPORT const char *iots_ingest_status_name(iots_ingest_status_t status);
/** Reads the counters into *stats (stats->struct_size must be set). Thread-safe. */
IOTS_EXPORT iots_err_t iots_ingest_get_stats(iots_ingest_t *ingest, iots_ingest_stats_t *stats);
/**
 * Frees the handle; no submit may be running. A producer it made itself is flushed (up to
 * timeout_ms) and closed: IOTS_ERR_TIMED_OUT if readings had to be failed. A borrowed producer
 * is left to its owner. The handle is freed either way.
 */
IOTS_EXPORT iots_err_t iots_ingest_close(iots_ingest_t *ingest, int timeout_ms);

/* ------------------------------------------------------------------------------------------
 * Metrics. Since ABI 1.3.
 * ---------------------------------------------------------------------------------------- */

/**
 * Writes the counters of `pipeline` and/or `ingest` (either may be NULL, not both) in the
 * Prometheus text exposition format 0.0.4 (Content-Type "text/plain; version=0.0.4"): families
 * iotstream_pipeline_* and iotstream_ingest_*, counters named *_total, gauges in base units
 * (seconds, records), label values escaped. Read from the same counters as
 * iots_pipeline_stats_json() and iots_ingest_get_stats(). See docs/metrics.md for every family.
 * Buffer contract as iots_pipeline_stats_json(). Thread-safe.
 */
IOTS_EXPORT iots_err_t iots_metrics_prometheus(iots_pipeline_t *pipeline, iots_ingest_t *ingest, char *buf,
                                               size_t buf_size, size_t *needed);

/* ------------------------------------------------------------------------------------------
 * Defaults. Since ABI 1.5.
 * ---------------------------------------------------------------------------------------- */

/**
 * The library's names and defaults as one JSON document, so that hosts, bindings and docs
 * read them instead of keeping copies:
 *   "topics": {"readings", "windows", "aggregates", "alerts", "dlq"}: the topic names;
 *   "partitions": partitions per topic of the embedded broker;
 *   "stages": the default pipeline stages ([{"plugin": "anomaly"}, ...]);
 *   "keys": every key of the pipeline document (docs/pipeline.md), in its order, each
 *     {"path": "input.max_batch" ("stages[].plugin" for each element of an array),
 *      "type": "bool" | "int" | "double" | "string" | "json", "default": value (null: absent
 *      unless given; see "help"), "required": bool, "help": one line, and for int keys
 *      "min", "max"}.
 * Keys and fields may be added in later versions. Static storage, valid while the library is
 * loaded; never NULL. Thread-safe.
 */
IOTS_EXPORT const char *iots_defaults_json(void);

/* ------------------------------------------------------------------------------------------
 * Integers. Since ABI 1.7.
 * ---------------------------------------------------------------------------------------- */

/**
 * Parses `text` as an integer in [min, max] by the rule the library applies to every integer
 * it is configured with (pipeline documents, plugin config), so that a host's flags and files
 * refuse what the library refuses: `text` must be a JSON number that is exactly an integer
 * ("300", "-300"; also "5.0" or "-3e2", a float with no fraction of magnitude up to 2^53, as
 * JSON writers emit them; JSON's whitespace around the number is allowed). Refused, never
 * wrapped or truncated: fractions ("1.5"), values out of range or past int64
 * ("18446744073709551615" is not -1), larger floats ("1e300"), and text that is not a JSON
 * number ("", "0x10", "+5", "12abc", "5 6").
 * On success writes *out and returns IOTS_OK. On refusal returns IOTS_ERR_INVALID_ARG, leaves
 * *out as it was, and writes to errstr the end of a sentence for the caller to prefix with the
 * name of what it parsed: "must be an integer in [1, 2147483647], got 3000000000" (the range
 * is left out when it is all of int64). NULL text or out, or min > max: IOTS_ERR_INVALID_ARG.
 * Thread-safe.
 */
IOTS_EXPORT iots_err_t iots_parse_int(const char *text, int64_t min, int64_t max, int64_t *out,
                                      char *errstr, size_t errstr_size);

/* ------------------------------------------------------------------------------------------
 * The API table, for hosts that dlopen() the library and want a single dlsym().
 * Entries are only ever appended; a host reads only the entries its struct_size covers.
 * ---------------------------------------------------------------------------------------- */
typedef struct iots_api_s {
    size_t struct_size; /**< sizeof the table as built into the library */
    int abi_major;
    int abi_minor;
    /* ABI 1.0 */
    int (*version)(void);
    const char *(*version_str)(void);
    const char *(*err_str)(iots_err_t);
    const char *(*err_name)(iots_err_t);
    iots_err_t (*log_set_level)(iots_log_level_t);
    iots_log_level_t (*log_get_level)(void);
    void (*log_set_callback)(iots_log_cb_t, void *);
    iots_err_t (*broker_new)(const char *, iots_broker_t **, char *, size_t);
    const char *(*broker_bootstrap)(const iots_broker_t *);
    iots_err_t (*broker_create_topic)(iots_broker_t *, const char *, int, char *, size_t);
    iots_err_t (*broker_set_down)(iots_broker_t *, int, int);
    iots_err_t (*broker_set_rtt)(iots_broker_t *, int, int);
    iots_err_t (*broker_push_request_errors)(iots_broker_t *, int, int, int);
    void (*broker_destroy)(iots_broker_t *);
    iots_err_t (*producer_new)(const char *, iots_delivery_cb_t, void *, iots_producer_t **,
                               char *, size_t);
    iots_err_t (*producer_send_reading)(iots_producer_t *, const char *, const char *,
                                        const char *, char *, size_t);
    iots_err_t (*producer_send)(iots_producer_t *, const char *, const void *, size_t,
                                const void *, size_t, void *, char *, size_t);
    iots_err_t (*producer_send_batch)(iots_producer_t *, const char *, const iots_reading_t *,
                                      size_t, size_t *, size_t *, char *, size_t);
    iots_err_t (*producer_flush)(iots_producer_t *, int);
    iots_err_t (*producer_get_stats)(iots_producer_t *, iots_producer_stats_t *);
    iots_err_t (*producer_close)(iots_producer_t *, int);
    iots_err_t (*consumer_new)(const char *, iots_rebalance_cb_t, void *, iots_consumer_t **,
                               char *, size_t);
    iots_err_t (*consumer_subscribe)(iots_consumer_t *, const char *const *, size_t, char *,
                                     size_t);
    iots_err_t (*consumer_poll_batch)(iots_consumer_t *, size_t, int, iots_batch_t **, char *,
                                      size_t);
    size_t (*batch_count)(const iots_batch_t *);
    const iots_record_t *(*batch_record)(const iots_batch_t *, size_t);
    void (*batch_destroy)(iots_batch_t *);
    iots_err_t (*consumer_commit_batch)(iots_consumer_t *, const iots_batch_t *, char *,
                                        size_t);
    iots_err_t (*consumer_process)(iots_consumer_t *, size_t, int, iots_batch_handler_t,
                                   void *, size_t *, char *, size_t);
    iots_err_t (*consumer_pause)(iots_consumer_t *);
    iots_err_t (*consumer_resume)(iots_consumer_t *);
    iots_err_t (*consumer_lag)(iots_consumer_t *, iots_partition_lag_t *, size_t, size_t *,
                               int);
    iots_err_t (*consumer_get_stats)(iots_consumer_t *, iots_consumer_stats_t *);
    iots_err_t (*consumer_close)(iots_consumer_t *);
    iots_err_t (*pipeline_new)(const char *, iots_pipeline_t **, char *, size_t);
    iots_err_t (*pipeline_start)(iots_pipeline_t *, char *, size_t);
    iots_err_t (*pipeline_run_bounded)(iots_pipeline_t *, int, char *, size_t);
    iots_err_t (*pipeline_stop)(iots_pipeline_t *, int, int, char *, size_t);
    iots_err_t (*pipeline_stats_json)(iots_pipeline_t *, char *, size_t, size_t *);
    void (*pipeline_destroy)(iots_pipeline_t *);
    iots_err_t (*plugins_describe_json)(const char *, char *, size_t, size_t *, char *, size_t);
    iots_err_t (*loadgen_new)(const char *, iots_loadgen_t **, char *, size_t);
    iots_err_t (*loadgen_start)(iots_loadgen_t *, char *, size_t);
    iots_err_t (*loadgen_wait)(iots_loadgen_t *, int);
    void (*loadgen_stop)(iots_loadgen_t *);
    iots_err_t (*loadgen_get_stats)(iots_loadgen_t *, iots_loadgen_stats_t *);
    void (*loadgen_destroy)(iots_loadgen_t *);
    /* ABI 1.1 */
    iots_err_t (*producer_send_reading_at)(iots_producer_t *, const char *, const char *,
                                           const char *, int64_t, char *, size_t);
    /* ABI 1.2 */
    iots_err_t (*ingest_new)(const char *, iots_producer_t *, iots_ingest_t **, char *, size_t);
    iots_err_t (*ingest_submit)(iots_ingest_t *, const char *, const void *, size_t,
                                iots_ingest_reply_t **, char *, size_t);
    size_t (*ingest_reply_count)(const iots_ingest_reply_t *);
    const iots_ingest_item_t *(*ingest_reply_item)(const iots_ingest_reply_t *, size_t);
    void (*ingest_reply_destroy)(iots_ingest_reply_t *);
    const char *(*ingest_status_name)(iots_ingest_status_t);
    iots_err_t (*ingest_get_stats)(iots_ingest_t *, iots_ingest_stats_t *);
    iots_err_t (*ingest_close)(iots_ingest_t *, int);
    /* ABI 1.3 */
    iots_err_t (*metrics_prometheus)(iots_pipeline_t *, iots_ingest_t *, char *, size_t, size_t *);
    /* ABI 1.4 */
    iots_err_t (*pipeline_set_output_tap)(iots_pipeline_t *, iots_output_tap_fn, void *, char *, size_t);
    /* ABI 1.5 */
    const char *(*defaults_json)(void);
    /* ABI 1.6 */
    iots_err_t (*broker_set_partition_leader)(iots_broker_t *, const char *, int, int);
    iots_err_t (*broker_set_coordinator)(iots_broker_t *, const char *, const char *, int);
    /* ABI 1.7 */
    iots_err_t (*parse_int)(const char *, int64_t, int64_t, int64_t *, char *, size_t);
    /* New entries are appended here, with a comment naming the ABI minor that added them. */
} iots_api_t;

/**
 * Returns the API table for ABI `abi_major`, provided the library serves at least
 * `abi_minor` of it; otherwise NULL, with the reason in errstr. The table is static and
 * valid while the library stays loaded. Thread-safe.
 */
IOTS_EXPORT const iots_api_t *iots_get_api(int abi_major, int abi_minor, char *errstr,
                                           size_t errstr_size);
/** Type of iots_get_api, for dlsym(). */
typedef const iots_api_t *(*iots_get_api_fn)(int, int, char *, size_t);

#ifdef __cplusplus
}
#endif

#endif /* IOTSTREAM_H */
