/*
 * spike_rule.c: an iotstream anomaly rule, built out of tree.
 *
 * Fires when a sensor's reading jumps by more than `max_jump` between two consecutive
 * readings (in event time) of that sensor: a thermometer that reads 21.0 then 29.5 is
 * broken, on fire, or being tampered with, even though both values are in range.
 *
 *   cc -std=c99 -Wall -Wextra -Werror -O2 -shared -fPIC -I<iotstream>/core/include \
 *      -o spike_rule.so spike_rule.c
 *
 * Config:  field      string  "temperature"       numeric field to watch
 *          max_jump   double  5.0                 largest normal change between readings
 *          max_gap_s  int     600                 readings further apart are not compared
 *          rule       string  "temperature_spike" rule name in alerts
 *
 * The alert's value is the jump itself (new reading minus previous), signed.
 *
 * State: the last reading of every sensor seen, in an open-addressing hash table allocated
 * through the host (alloc_mem / free_mem). A sensor's readings all come from one stream
 * (the sensor id is the Kafka key), so on_revoke() forgets the sensors of that stream: the
 * member that takes it over starts them fresh.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "iotstream/plugin.h"

typedef struct last_reading_s {
    char *sensor;       /* host-allocated copy of the id; NULL marks an empty slot */
    size_t sensor_len;
    uint64_t hash;
    int64_t time_ms;
    double value;
    uint32_t stream;
} last_reading_t;

typedef struct spike_rule_s {
    const iots_host_api_t *host;
    iots_host_ctx_t *ctx;
    char field[64];
    double max_jump;
    int64_t max_gap_ms;
    int rule_id;
    last_reading_t *slots; /* capacity is a power of two */
    size_t capacity;
    size_t used;
} spike_rule_t;

static uint64_t hash_bytes(const char *data, size_t len) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    size_t i;
    for (i = 0; i < len; ++i) {
        h ^= (unsigned char)data[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static last_reading_t *new_slots(spike_rule_t *self, size_t capacity) {
    last_reading_t *slots =
        (last_reading_t *)self->host->alloc_mem(self->ctx, capacity * sizeof *slots);
    if (slots != NULL) memset(slots, 0, capacity * sizeof *slots);
    return slots;
}

static last_reading_t *probe(last_reading_t *slots, size_t capacity, uint64_t hash,
                             const char *sensor, size_t len) {
    size_t i = (size_t)hash & (capacity - 1);
    for (;;) {
        last_reading_t *slot = &slots[i];
        if (slot->sensor == NULL) return slot;
        if (slot->hash == hash && slot->sensor_len == len && memcmp(slot->sensor, sensor, len) == 0)
            return slot;
        i = (i + 1) & (capacity - 1);
    }
}

static void free_slot(spike_rule_t *self, last_reading_t *slot) {
    self->host->free_mem(self->ctx, slot->sensor);
    slot->sensor = NULL;
}

/*
 * Moves every entry into a fresh table of `capacity` slots, leaving out (and freeing) the
 * entries of `drop_stream` when `drop` is set. Returns 0, or -1 when memory ran out (the
 * old table is then untouched).
 */
static int rebuild(spike_rule_t *self, size_t capacity, int drop, uint32_t drop_stream) {
    last_reading_t *slots = new_slots(self, capacity);
    size_t i, used = 0;
    if (slots == NULL) return -1;
    for (i = 0; i < self->capacity; ++i) {
        last_reading_t *old = &self->slots[i];
        if (old->sensor == NULL) continue;
        if (drop && old->stream == drop_stream) {
            free_slot(self, old);
            continue;
        }
        *probe(slots, capacity, old->hash, old->sensor, old->sensor_len) = *old;
        ++used;
    }
    self->host->free_mem(self->ctx, self->slots);
    self->slots = slots;
    self->capacity = capacity;
    self->used = used;
    return 0;
}

static int spike_create(const iots_host_api_t *host, iots_host_ctx_t *ctx,
                        const iots_config_t *cfg, void **instance, char *errstr,
                        size_t errstr_size) {
    spike_rule_t *self;
    const char *field, *rule;
    size_t field_len, rule_len;
    int64_t max_gap_s;

    self = (spike_rule_t *)host->alloc_mem(ctx, sizeof *self);
    if (self == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return 1;
    }
    memset(self, 0, sizeof *self);
    self->host = host;
    self->ctx = ctx;
    /* The host validated types and filled defaults, so these reads cannot fail. */
    host->config_string(cfg, "field", &field, &field_len);
    host->config_double(cfg, "max_jump", &self->max_jump);
    host->config_int(cfg, "max_gap_s", &max_gap_s);
    host->config_string(cfg, "rule", &rule, &rule_len);

    if (field_len == 0 || field_len >= sizeof self->field) {
        snprintf(errstr, errstr_size, "field must be 1 to %u characters",
                 (unsigned)sizeof self->field - 1);
    } else if (!(self->max_jump > 0.0)) {
        snprintf(errstr, errstr_size, "max_jump must be greater than 0, got %g", self->max_jump);
    } else if (max_gap_s <= 0) {
        snprintf(errstr, errstr_size, "max_gap_s must be greater than 0, got %lld",
                 (long long)max_gap_s);
    } else if ((self->rule_id = host->register_rule(ctx, rule)) < 0) {
        snprintf(errstr, errstr_size, "cannot register rule '%s': 64 rules already exist", rule);
    } else if ((self->slots = new_slots(self, 1024)) == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
    } else {
        memcpy(self->field, field, field_len);
        self->max_gap_ms = max_gap_s * 1000;
        self->capacity = 1024;
        *instance = self;
        return 0;
    }
    host->free_mem(ctx, self);
    return 1;
}

static int spike_process(void *instance, const iots_batch_view_t *batch, char *errstr,
                         size_t errstr_size) {
    spike_rule_t *self = (spike_rule_t *)instance;
    const double *values = NULL;
    uint32_t f, i;

    for (f = 0; f < batch->field_count; ++f)
        if (strcmp(batch->field_names[f], self->field) == 0) values = batch->fields[f];
    if (values == NULL) return 0; /* no reading in this batch carries the field */

    for (i = 0; i < batch->count; ++i) {
        const double value = values[i];
        const int64_t time_ms = batch->event_time_ms[i];
        const iots_str_t id = batch->sensor_ids[i];
        uint64_t hash;
        last_reading_t *slot;
        double jump;

        if (value != value) continue; /* NaN: this reading lacks the field */
        /* Keep the load under 3/4 so probes stay short. */
        if ((self->used + 1) * 4 > self->capacity * 3 &&
            rebuild(self, self->capacity * 2, 0, 0) != 0) {
            snprintf(errstr, errstr_size, "out of memory growing the table to %lu sensors",
                     (unsigned long)self->capacity * 2);
            return 1;
        }
        hash = hash_bytes(id.data, id.len);
        slot = probe(self->slots, self->capacity, hash, id.data, id.len);
        if (slot->sensor == NULL) { /* first reading of this sensor */
            slot->sensor = (char *)self->host->alloc_mem(self->ctx, id.len + 1);
            if (slot->sensor == NULL) {
                snprintf(errstr, errstr_size, "out of memory");
                return 1;
            }
            memcpy(slot->sensor, id.data, id.len);
            slot->sensor[id.len] = '\0';
            slot->sensor_len = id.len;
            slot->hash = hash;
            ++self->used;
        } else {
            if (time_ms <= slot->time_ms) continue; /* late or repeated: not "next" */
            jump = value - slot->value;
            if (time_ms - slot->time_ms <= self->max_gap_ms &&
                (jump > self->max_jump || -jump > self->max_jump))
                self->host->report_anomaly(self->ctx, batch, i, self->rule_id, jump);
        }
        slot->time_ms = time_ms;
        slot->value = value;
        slot->stream = batch->streams[i];
    }
    return 0;
}

static void spike_on_revoke(void *instance, uint32_t stream) {
    spike_rule_t *self = (spike_rule_t *)instance;
    size_t i;
    if (rebuild(self, self->capacity, 1, stream) == 0) return;
    /* No memory for a new table: forgetting every sensor is safe, only less sensitive. */
    for (i = 0; i < self->capacity; ++i)
        if (self->slots[i].sensor != NULL) free_slot(self, &self->slots[i]);
    self->used = 0;
}

static void spike_destroy(void *instance) {
    spike_rule_t *self = (spike_rule_t *)instance;
    size_t i;
    for (i = 0; i < self->capacity; ++i)
        if (self->slots[i].sensor != NULL) free_slot(self, &self->slots[i]);
    self->host->free_mem(self->ctx, self->slots);
    self->host->free_mem(self->ctx, self);
}

static const iots_config_key_t spike_keys[] = {
    {.name = "field", .type = IOTS_CONFIG_STRING, .default_json = "\"temperature\"",
     .help = "numeric field to watch"},
    {.name = "max_jump", .type = IOTS_CONFIG_DOUBLE, .default_json = "5.0",
     .help = "largest normal change between consecutive readings"},
    {.name = "max_gap_s", .type = IOTS_CONFIG_INT, .default_json = "600",
     .help = "readings further apart (seconds) are not compared"},
    {.name = "rule", .type = IOTS_CONFIG_STRING, .default_json = "\"temperature_spike\"",
     .help = "rule name in alerts"},
};

/* Callbacks not named here are NULL: no timer, no state to restore on assign, no records held
 * back (any commit is safe), nothing to flush. */
static const iots_plugin_descriptor_t spike_descriptor = {
    IOTS_DESCRIPTOR_HEADER(iots_plugin_descriptor_t),
    .name = "spike_rule",
    .version = "1.0.0",
    .description = "fires when a reading jumps by more than max_jump between consecutive readings of a sensor",
    .kind = IOTS_PLUGIN_RULE,
    IOTS_CONFIG_KEYS(spike_keys),
    .create = spike_create,
    .process = spike_process,
    .on_revoke = spike_on_revoke,
    .destroy = spike_destroy,
};

IOTS_PLUGIN_DEFINE(&spike_descriptor);
