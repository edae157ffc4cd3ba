/* minimal_rule.c: an alert for every reading whose `field` is above `threshold` (docs/writing-a-rule-plugin.md) */
#include <stdio.h>
#include "iotstream/plugin.h"
typedef struct { const iots_host_api_t *host; iots_host_ctx_t *ctx; int field, rule; double threshold; } rule_t;

static int create(const iots_host_api_t *host, iots_host_ctx_t *ctx, const iots_config_t *cfg, void **instance,
                  char *errstr, size_t errstr_size) {
    const char *field;
    rule_t *self = host->alloc_mem(ctx, sizeof *self);
    if (self == NULL) return 1;
    host->config_string(cfg, "field", &field, NULL); /* the host checked the types and filled defaults */
    *self = (rule_t){host, ctx, host->field_index(ctx, field), host->register_rule(ctx, "above_threshold"), 0};
    host->config_double(cfg, "threshold", &self->threshold);
    if (self->field >= 0 && self->rule >= 0) return *instance = self, 0;
    snprintf(errstr, errstr_size, "readings have no field '%s', or 64 rules exist already", field);
    host->free_mem(ctx, self);
    return 1;
}

static int process(void *instance, const iots_batch_view_t *batch, char *errstr, size_t errstr_size) {
    const rule_t *self = instance;
    for (uint32_t i = 0; i < batch->count; ++i) /* a reading without the field holds NaN: never above */
        if (batch->fields[self->field][i] > self->threshold)
            self->host->report_anomaly(self->ctx, batch, i, self->rule, batch->fields[self->field][i]);
    return (void)errstr, (void)errstr_size, 0; /* nothing here can fail */
}

static void destroy(void *instance) { rule_t *self = instance; self->host->free_mem(self->ctx, self); }
static const iots_config_key_t keys[] = {
    {.name = "field", .type = IOTS_CONFIG_STRING, .default_json = "\"temperature\"", .help = "field to check"},
    {.name = "threshold", .type = IOTS_CONFIG_DOUBLE, .default_json = "50", .help = "alert above this"}};
static const iots_plugin_descriptor_t rule = {IOTS_DESCRIPTOR_HEADER(iots_plugin_descriptor_t), .name = "minimal_rule",
    .kind = IOTS_PLUGIN_RULE, IOTS_CONFIG_KEYS(keys), .create = create, .process = process, .destroy = destroy};
IOTS_PLUGIN_DEFINE(&rule);
