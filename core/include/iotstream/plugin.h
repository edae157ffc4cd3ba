/*
 * plugin.h: the ABI between the iotstream pipeline (the host) and its plugins.
 *
 * Self-contained C99: a plugin includes only this header and never links libiotstream.
 * Everything a plugin needs from the host (logging, emitting records, dead-lettering,
 * allocation, configuration values, rule names) comes through the iots_host_api_t table.
 *
 * A plugin shared library exports exactly one symbol:
 *
 *     IOTS_PLUGIN_EXPORT const iots_plugin_descriptor_t *const *
 *     iots_plugin_descriptors(uint32_t *count);
 *
 * returning an array of `*count` descriptors. IOTS_PLUGIN_DEFINE() writes it. A whole rule:
 *
 *     static const iots_plugin_descriptor_t my_rule = {
 *         IOTS_DESCRIPTOR_HEADER(iots_plugin_descriptor_t),
 *         .name = "my_rule", .version = "1.0.0", .kind = IOTS_PLUGIN_RULE,
 *         IOTS_CONFIG_KEYS(my_keys),
 *         .create = my_create, .process = my_process, .destroy = my_destroy,
 *     };
 *     IOTS_PLUGIN_DEFINE(&my_rule);
 *
 * Designated initializers leave every callback not named NULL, and NULL means "not needed".
 *
 * Lifetimes: the descriptors, the array returned by the entry symbol, and everything they point
 * to (name, version, description, the config key table and its strings) must stay valid and
 * unchanged while the library is loaded: static storage, as above. The host reads them at any
 * time and keeps the library loaded as long as it holds any of them.
 *
 * Versioning (as GStreamer, OBS and DuckDB do): every descriptor begins with struct_size,
 * abi_major, abi_minor. The host rejects a different major, a minor newer than its own, and a
 * struct_size too small to hold the callbacks that the descriptor's minor requires. A host
 * copies struct_size bytes into a zeroed descriptor of its own.
 *
 * The one rule for growing the ABI: fields are only appended, at the end of a struct, with a
 * new minor; a zero in a new field means "as the previous minor did". There is no reserved
 * padding: struct_size says how much of a struct its writer knew. Whoever reads a struct from
 * the other side checks that the field is inside the writer's struct_size first
 * (IOTS_HAS_FIELD), e.g. a plugin before calling a host function newer than ABI 1.0. An array
 * of structs travels with its element size (config_key_size), so its elements grow the same way.
 *
 * History: 1.0 the first ABI (its descriptor ended in `void *reserved[8]`, always zero).
 *          1.1 config_key_size appended to the descriptor in place of the padding.
 *          1.2 state hand-over on hot replace: state_version, state_min_version, export_state,
 *              import_state appended to the descriptor (see "State hand-over" below).
 *          1.3 sinks: IOTS_PLUGIN_SINK, write_sink appended to the descriptor, sink_ack appended
 *              to the host table (see "Sinks" below).
 *
 * Threading: every call to one plugin instance (create, process, tick, on_assign, on_revoke,
 * checkpoint, flush, export_state, import_state, destroy) is made from one pipeline thread, one at a time; an instance
 * needs no locking. Different instances may run at the same time on different threads, so
 * plugin globals must be thread-safe. Host functions may only be called from inside such a
 * callback, on that thread.
 *
 * Errors: callbacks return 0 on success, non-zero on failure, after writing a reason into the
 * host-owned (errstr, errstr_size) buffer where one is given. No C++ exception may leave a
 * plugin: a C++ plugin catches everything at each callback.
 */
#ifndef IOTSTREAM_PLUGIN_H
#define IOTSTREAM_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IOTS_PLUGIN_ABI_MAJOR 1
#define IOTS_PLUGIN_ABI_MINOR 4
/** The one symbol a plugin library exports. */
#define IOTS_PLUGIN_ENTRY_SYMBOL "iots_plugin_descriptors"

#if defined(__GNUC__)
#define IOTS_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define IOTS_PLUGIN_EXPORT
#endif

#ifdef __cplusplus
#define IOTS_PLUGIN_EXTERN_C extern "C"
#else
#define IOTS_PLUGIN_EXTERN_C
#endif

/**
 * Designated initializers for the version header every versioned struct begins with:
 * `struct_size = sizeof(type)` and the ABI of this header.
 */
#define IOTS_DESCRIPTOR_HEADER(type) \
    .struct_size = sizeof(type), .abi_major = IOTS_PLUGIN_ABI_MAJOR, .abi_minor = IOTS_PLUGIN_ABI_MINOR

/**
 * Non-zero when `field` lies inside the struct_size that the other side of the ABI wrote into
 * *ptr, i.e. when an appended field may be read: IOTS_HAS_FIELD(host, field_index).
 */
#define IOTS_HAS_FIELD(ptr, field)                                                      \
    ((size_t)((const char *)&(ptr)->field - (const char *)(ptr)) + sizeof((ptr)->field) <= \
     (size_t)(ptr)->struct_size)

/* ------------------------------------------------------------------------------------------
 * The batch: one poll's decoded readings, as columns. Owned by the host; borrowed by the
 * plugin for the duration of process() only (copy what you keep).
 * ---------------------------------------------------------------------------------------- */

/** A string that is not NUL-terminated. */
typedef struct iots_str_s {
    const char *data;
    size_t len;
} iots_str_t;

/**
 * The event times iotstream accepts, in epoch milliseconds UTC: the years 0000 through 9999,
 * which ISO-8601 spells with four digits. The decoder dead-letters a reading timed outside
 * them (bad_timestamp), so every event_time_ms a stage sees lies within them.
 */
#define IOTS_MIN_EVENT_TIME_MS INT64_C(-62167219200000) /**< 0000-01-01T00:00:00.000Z */
#define IOTS_MAX_EVENT_TIME_MS INT64_C(253402300799999) /**< 9999-12-31T23:59:59.999Z */

typedef struct iots_batch_view_s {
    uint32_t struct_size;
    uint32_t count;                 /**< records in the batch */
    uint32_t field_count;           /**< numeric columns, from the decoder schema */
    const char *const *field_names; /**< field_count names, e.g. "temperature", "location.lat" */
    const double *const *fields;    /**< fields[f][i]: field f of record i; NaN when absent */
    const iots_str_t *sensor_ids;   /**< the envelope's sensor_id (also the Kafka key) */
    const int64_t *event_time_ms;   /**< the envelope's timestamp, epoch milliseconds UTC,
                                         within IOTS_MIN/MAX_EVENT_TIME_MS */
    const uint32_t *streams;        /**< input stream id: one per (topic, partition) */
    const int64_t *offsets;         /**< Kafka offset within the stream */
    const iots_str_t *payloads;     /**< the raw record value as consumed */
    const uint64_t *anomaly_bits;   /**< rule hits so far: bit r set = rule id r fired */
} iots_batch_view_t;

/* ------------------------------------------------------------------------------------------
 * Configuration. The host validates a stage's config against the descriptor's key table
 * (unknown key, wrong type) and fills defaults before create() is called.
 * ---------------------------------------------------------------------------------------- */
typedef enum iots_config_type_e {
    IOTS_CONFIG_BOOL = 1,
    IOTS_CONFIG_INT = 2,
    IOTS_CONFIG_DOUBLE = 3, /**< an INT value is accepted for a DOUBLE key */
    IOTS_CONFIG_STRING = 4,
    IOTS_CONFIG_JSON = 5    /**< any JSON value (arrays, objects), read as JSON text */
} iots_config_type_t;

/** One config key. Grows like every struct here (appended fields, zero = as before): the host
 *  steps through a table by the descriptor's config_key_size. */
typedef struct iots_config_key_s {
    const char *name;
    iots_config_type_t type;
    const char *default_json; /**< default as JSON text ("300", "\"tumbling\"", "[]"); NULL = required */
    const char *help;         /**< one line for --help and notebooks */
} iots_config_key_t;

/** A validated configuration; owned by the host, valid until the instance is destroyed. */
typedef struct iots_config_s iots_config_t;

/* ------------------------------------------------------------------------------------------
 * Host functions. The table is owned by the host and valid for the plugin's whole life.
 * ---------------------------------------------------------------------------------------- */
/** Per-instance host context; owned by the host, valid until destroy() returns. */
typedef struct iots_host_ctx_s iots_host_ctx_t;

typedef enum iots_emit_flags_e {
    IOTS_EMIT_RAW = 0,      /**< value is published as given */
    IOTS_EMIT_ENVELOPE = 1  /**< value (a JSON object) becomes "data" of the seed's envelope */
} iots_emit_flags_t;

typedef struct iots_host_api_s {
    uint32_t struct_size;
    uint16_t abi_major;
    uint16_t abi_minor;
    /** Logs one line (level as iots_log_level_t: 0 trace .. 5 critical). */
    void (*log)(iots_host_ctx_t *ctx, int level, const char *message);
    /**
     * Publishes a record to a named output ("windows", "aggregates", "alerts", or any name
     * the pipeline maps to a topic). key and value are copied before return. Returns 0, or
     * non-zero when the output is unknown or the producer refused (errors are logged).
     */
    int (*emit)(iots_host_ctx_t *ctx, const char *output, const char *key, size_t key_len,
                const char *value, size_t value_len, int flags);
    /**
     * Sends record `index` of `batch` to the dead-letter topic with its original bytes and a
     * header naming `reason` (e.g. "late"); `detail` (may be NULL) adds a human explanation.
     * The record then counts as dead-lettered, not processed. Only inside the process() call
     * that received `batch`: elsewhere (tick, flush, a batch kept from an earlier process())
     * it returns non-zero and does nothing. report_anomaly likewise.
     */
    int (*dead_letter)(iots_host_ctx_t *ctx, const iots_batch_view_t *batch, uint32_t index,
                       const char *reason, const char *detail);
    /** Memory that outlives a callback; free with free_mem. Never mixed with malloc/new. */
    void *(*alloc_mem)(iots_host_ctx_t *ctx, size_t size);
    void (*free_mem)(iots_host_ctx_t *ctx, void *ptr);
    /** Configuration readers: 0 on success, non-zero if the key is absent or of another type. */
    int (*config_bool)(const iots_config_t *cfg, const char *key, int *out);
    int (*config_int)(const iots_config_t *cfg, const char *key, int64_t *out);
    int (*config_double)(const iots_config_t *cfg, const char *key, double *out);
    /** *out points into host memory valid as long as cfg; *len excludes the NUL (len may be NULL). */
    int (*config_string)(const iots_config_t *cfg, const char *key, const char **out,
                         size_t *len);
    /** The key's value as JSON text (for IOTS_CONFIG_JSON keys); same lifetime rule. */
    int (*config_json)(const iots_config_t *cfg, const char *key, const char **out,
                       size_t *len);
    /**
     * Registers an anomaly rule name for this pipeline and returns its id (0..63), or -1 when
     * 64 rules exist. The same name always gets the same id. Rules set bit `id` of
     * anomaly_bits for later stages.
     */
    int (*register_rule)(iots_host_ctx_t *ctx, const char *rule_name);
    /** The name of rule `id`; host-owned, valid for the pipeline's life. NULL if unknown. */
    const char *(*rule_name)(iots_host_ctx_t *ctx, int rule_id);
    /**
     * Reports that rule `rule_id` fired on record `index` with the offending `value`: the
     * host publishes an alert on "alerts" at once ({sensor_id, rule, value, event_time}) and
     * sets the rule's bit in the record's anomaly_bits for the stages that follow.
     */
    int (*report_anomaly)(iots_host_ctx_t *ctx, const iots_batch_view_t *batch, uint32_t index,
                          int rule_id, double value);
    /** Index of a named field in batch columns, or -1 (e.g. "battery_level"). */
    int (*field_index)(iots_host_ctx_t *ctx, const char *field_name);

    /* ---- ABI 1.3 (check IOTS_HAS_FIELD(host, sink_ack) first) ---- */
    /**
     * A sink acknowledges the batch with `batch_token` (iots_sink_batch_t.token): status
     * IOTS_SINK_OK when its records are durable in the sink's store, IOTS_SINK_FAILED when they
     * never will be (after the sink's own retries): the pipeline then stops, naming the sink and
     * `detail` (may be NULL), and commits nothing past the batch. Exactly once per batch, from any
     * thread, inside write_sink() or later, but before destroy() returns. Returns 0, or non-zero
     * for a token that is unknown or already acknowledged.
     */
    int (*sink_ack)(iots_host_ctx_t *ctx, uint64_t batch_token, int status, const char *detail);
} iots_host_api_t;

/* ------------------------------------------------------------------------------------------
 * The descriptor.
 * ---------------------------------------------------------------------------------------- */
typedef enum iots_plugin_kind_e {
    IOTS_PLUGIN_STAGE = 1, /**< a processing stage: sees every batch, keeps state */
    IOTS_PLUGIN_RULE = 2,  /**< an anomaly rule set: sees every batch, reports anomalies;
                                every loaded rule plugin joins the running rules stage */
    IOTS_PLUGIN_SINK = 3   /**< ABI 1.3: receives output records (write_sink), see "Sinks" */
} iots_plugin_kind_t;

/** Sentinel for "no value" in int64 outputs (checkpoint, on_assign). */
#define IOTS_NO_VALUE INT64_MIN

/* ------------------------------------------------------------------------------------------
 * State hand-over (ABI 1.2). When a stage's file is replaced while the pipeline runs, the host
 * moves each assigned stream's open state from the running instance to the new version's, so
 * a window open across the swap is emitted once and complete, by the new version:
 *
 *   1. the host creates the new instance (create, then on_assign for every assigned stream);
 *   2. per assigned stream: the old instance's export_state() writes the stream's state as
 *      bytes through the host's write function, the new instance's import_state() reads them;
 *   3. if every import succeeded, the new instance takes the old one's place and the old one
 *      is destroyed WITHOUT flush (its state lives on); otherwise the new instance is
 *      destroyed and the old one keeps running untouched (export_state must not change it).
 *
 * The host refuses the swap up front, keeps the running version and logs both versions, when
 * the old instance holds state (it has a checkpoint callback) and either side cannot hand it
 * over: the old one has no export_state (a plugin built for ABI 1.0/1.1), the new one no
 * import_state, or the old one's state_version is outside the new one's
 * [state_min_version, state_version]. A stage without checkpoint holds nothing a commit
 * depends on: it is drained with flush(final=1) and replaced as before 1.2.
 *
 * The bytes are the plugin's own format, versioned by state_version: bump it whenever the
 * format changes, and keep reading older versions (state_min_version) where that is cheap.
 * Ownership: nothing allocated on one side is freed on the other.
 *   export: the bytes given to write() are PLUGIN-owned and only borrowed by the host for the
 *           duration of that write() call (the host copies them).
 *   import: `data` is HOST-owned and borrowed by the plugin for the duration of import_state()
 *           (the plugin copies what it keeps).
 * ---------------------------------------------------------------------------------------- */

/**
 * The host's sink for exported state: appends `len` bytes of `data` (plugin-owned, borrowed for
 * this call) to the stream's state. Returns 0, or non-zero when the host cannot take them (out
 * of memory): export_state then returns non-zero. Only inside the export_state() call that
 * received it, with the `sink` it received.
 */
typedef int (*iots_state_write_fn)(void *sink, const void *data, size_t len);

/* ------------------------------------------------------------------------------------------
 * Sinks (ABI 1.3). A plugin of kind IOTS_PLUGIN_SINK, listed under the pipeline's "sinks" with
 * the outputs it takes, receives every record the pipeline emits to those outputs, in batches,
 * and acknowledges each batch through host->sink_ack. The pipeline commits input offsets only
 * once every batch holding their outputs was acknowledged (as for Kafka deliveries): a sink
 * gets at-least-once, exactly-once in effect where its writes are idempotent.
 *
 * Threading: create() and destroy() run on the pipeline thread; write_sink() runs on a thread
 * of the host's own, one per sink instance, one call at a time, so a slow write never blocks
 * the pipeline (batches queue up meanwhile). A sink retries transient failures itself (with
 * backoff) before it acknowledges a batch as failed. process, tick, flush and the stream
 * callbacks are never called for a sink (process may be NULL).
 * ---------------------------------------------------------------------------------------- */
typedef enum iots_sink_status_e {
    IOTS_SINK_OK = 0,    /**< the batch is durable */
    IOTS_SINK_FAILED = 1 /**< the batch can never be written: the pipeline stops */
} iots_sink_status_t;

/** One batch of output records, as columns; HOST-owned, borrowed for the write_sink() call
 *  only (copy what you keep). */
typedef struct iots_sink_batch_s {
    uint32_t struct_size;
    uint32_t count;             /**< records in the batch */
    uint64_t token;             /**< names the batch in sink_ack */
    const iots_str_t *outputs;  /**< the output name ("windows", "aggregates", "alerts", ...) */
    const iots_str_t *keys;     /**< the record key (the sensor id for the built-in outputs) */
    const iots_str_t *values;   /**< the record value as published (JSON for the built-ins) */
    const int64_t *event_time_ms; /**< the event time when the host knows it, else IOTS_NO_VALUE */
} iots_sink_batch_t;

/** ABI 1.4: writes one gauge of a plugin instance for the metrics page (see gauges below). */
typedef void (*iots_gauge_put_fn)(void *opaque, const char *name, double value);

typedef struct iots_plugin_descriptor_s {
    uint32_t struct_size;   /**< sizeof(iots_plugin_descriptor_t) as the plugin was built */
    uint16_t abi_major;     /**< IOTS_PLUGIN_ABI_MAJOR the plugin was built against */
    uint16_t abi_minor;     /**< IOTS_PLUGIN_ABI_MINOR the plugin was built against */
    const char *name;       /**< unique, [a-z0-9_]+ (all strings: static storage, see top) */
    const char *version;    /**< the plugin's own version, e.g. "1.2.0" */
    const char *description; /**< one line; may be NULL */
    iots_plugin_kind_t kind;
    const iots_config_key_t *config_keys; /**< static table of config_key_count keys, each
                                               config_key_size bytes (IOTS_CONFIG_KEYS sets all three) */
    uint32_t config_key_count;

    /**
     * Creates an instance. `host` and `ctx` stay valid until destroy() returns; `cfg` too.
     * Writes the instance into *instance (plugin-owned). Non-zero fails the load.
     */
    int (*create)(const iots_host_api_t *host, iots_host_ctx_t *ctx, const iots_config_t *cfg,
                  void **instance, char *errstr, size_t errstr_size);
    /** Processes one batch. Non-zero stops the pipeline with the error (the batch is retried). */
    int (*process)(void *instance, const iots_batch_view_t *batch, char *errstr,
                   size_t errstr_size);
    /**
     * Called about every 25 ms with the wall clock: emit on an interval, close windows of
     * idle streams. May be NULL.
     */
    int (*tick)(void *instance, int64_t wall_clock_ms);
    /**
     * A stream (topic, partition) was assigned to this member. `restored_watermark_ms` is the
     * event-time watermark from the last commit of that stream (IOTS_NO_VALUE if none):
     * windows that closed at or before it were already emitted. May be NULL.
     */
    void (*on_assign)(void *instance, uint32_t stream, int64_t restored_watermark_ms);
    /** A stream was revoked: drop its state without emitting (the new owner rebuilds). May be NULL. */
    void (*on_revoke)(void *instance, uint32_t stream);
    /**
     * Where a commit of `stream` may safely point: *oldest_needed_offset is the offset of the
     * oldest record still held in open state (IOTS_NO_VALUE: nothing held), and *watermark_ms
     * the stream's event-time watermark (IOTS_NO_VALUE: none). May be NULL (stateless).
     */
    void (*checkpoint)(void *instance, uint32_t stream, int64_t *oldest_needed_offset,
                       int64_t *watermark_ms);
    /** Emits everything held (final=1: closes all windows, as at the end of a bounded run). */
    int (*flush)(void *instance, int final);
    /** Frees the instance. Never fails. */
    void (*destroy)(void *instance);

    /* ---- ABI 1.1 ---- */
    /** sizeof one config_keys element as the plugin was built; 0 = the 1.0 iots_config_key_t */
    uint32_t config_key_size;

    /* ---- ABI 1.2: state hand-over on hot replace (see "State hand-over" above) ---- */
    /**
     * The format version of the state export_state writes (>= 1). 0: this plugin cannot hand
     * over state (export_state and import_state are then NULL).
     */
    uint32_t state_version;
    /** The oldest format import_state reads, 1..state_version; 0 means state_version. */
    uint32_t state_min_version;
    /**
     * Writes the open state of `stream` through write(sink, bytes, len), in as many calls as it
     * likes (none: the stream holds nothing). Must not change the instance. Returns 0, or
     * non-zero with a reason in errstr (the swap is then refused).
     */
    int (*export_state)(void *instance, uint32_t stream, iots_state_write_fn write, void *sink,
                        char *errstr, size_t errstr_size);
    /**
     * Replaces the state of `stream` (already announced by on_assign) with `len` bytes written
     * by export_state of a version whose state_version is `state_version` (within this
     * plugin's [state_min_version, state_version]). `data` is host-owned, valid for this call
     * only. Returns 0, or non-zero with a reason in errstr (the swap is then refused and this
     * instance destroyed).
     */
    int (*import_state)(void *instance, uint32_t stream, const void *data, size_t len,
                        uint32_t state_version, char *errstr, size_t errstr_size);

    /* ---- ABI 1.3: sinks (see "Sinks" above) ---- */
    /**
     * Takes one batch on the sink's thread and acknowledges it through host->sink_ack, now or
     * later. Non-zero (with a reason in errstr) is the same as acknowledging IOTS_SINK_FAILED.
     * Required for IOTS_PLUGIN_SINK, NULL for other kinds.
     */
    int (*write_sink)(void *instance, const iots_sink_batch_t *batch, char *errstr, size_t errstr_size);

    /* ---- ABI 1.4: gauges for the metrics page (docs/metrics.md) ---- */
    /**
     * Reports the instance's current gauges, each by one put(opaque, name, value) call: `name`
     * is [a-z0-9_]+ in base units ("open_windows", "open_sensors"), read during the call only;
     * the host shows it as iotstream_stage_<name>{stage="<plugin>"}. Called on the pipeline
     * thread (never beside another callback of the instance) about once a second: keep it
     * cheap (counts the plugin keeps anyway). May be NULL.
     */
    void (*gauges)(void *instance, iots_gauge_put_fn put, void *opaque);
} iots_plugin_descriptor_t;

/** The type of the entry symbol. */
typedef const iots_plugin_descriptor_t *const *(*iots_plugin_entry_fn)(uint32_t *count);

/**
 * Designated initializers for a descriptor's config key table, from a static array:
 *     static const iots_config_key_t my_keys[] = {{.name = "threshold", ...}, ...};
 *     ... IOTS_CONFIG_KEYS(my_keys), ...
 * (C only: C++20 wants designators in declaration order, and config_key_size comes last.)
 */
#define IOTS_CONFIG_KEYS(table)                                                          \
    .config_keys = (table), .config_key_count = (uint32_t)(sizeof(table) / sizeof((table)[0])), \
    .config_key_size = (uint32_t)sizeof((table)[0])

/**
 * Defines the entry symbol over the given descriptor addresses (static storage), in C or C++:
 *     IOTS_PLUGIN_DEFINE(&my_rule);
 *     IOTS_PLUGIN_DEFINE(&first, &second);
 */
#define IOTS_PLUGIN_DEFINE(...)                                                                 \
    IOTS_PLUGIN_EXTERN_C IOTS_PLUGIN_EXPORT const iots_plugin_descriptor_t *const *             \
    iots_plugin_descriptors(uint32_t *count);                                                   \
    IOTS_PLUGIN_EXTERN_C IOTS_PLUGIN_EXPORT const iots_plugin_descriptor_t *const *             \
    iots_plugin_descriptors(uint32_t *count) {                                                  \
        static const iots_plugin_descriptor_t *const iots_plugin_descriptor_list_[] = {__VA_ARGS__}; \
        if (count != NULL)                                                                      \
            *count = (uint32_t)(sizeof iots_plugin_descriptor_list_ /                           \
                                sizeof iots_plugin_descriptor_list_[0]);                        \
        return iots_plugin_descriptor_list_;                                                    \
    }                                                                                           \
    /* declared once more so that the caller's semicolon ends a declaration */                 \
    IOTS_PLUGIN_EXTERN_C IOTS_PLUGIN_EXPORT const iots_plugin_descriptor_t *const *             \
    iots_plugin_descriptors(uint32_t *count)

#ifdef __cplusplus
}
#endif

#endif /* IOTSTREAM_PLUGIN_H */
