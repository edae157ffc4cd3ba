/* Compiled with -std=c99 -pedantic -Werror: the public headers must stay plain C99. */
#include <stddef.h>

#include <iotstream/iotstream.h>
#include <iotstream/plugin.h>

/* The plugin descriptor only grows at its end (plugin.h, "the one rule for growing the ABI"):
 * each minor's fields come after the previous minor's. A C99 compile-time check: a negative
 * array size fails the build. */
#define IOTS_C99_ASSERT(name, condition) typedef char iots_c99_assert_##name[(condition) ? 1 : -1]
IOTS_C99_ASSERT(abi_1_1_after_1_0, offsetof(iots_plugin_descriptor_t, config_key_size) >
                                       offsetof(iots_plugin_descriptor_t, destroy));
IOTS_C99_ASSERT(abi_1_2_after_1_1, offsetof(iots_plugin_descriptor_t, state_version) >
                                       offsetof(iots_plugin_descriptor_t, config_key_size));
IOTS_C99_ASSERT(abi_1_2_order, offsetof(iots_plugin_descriptor_t, state_min_version) <
                                   offsetof(iots_plugin_descriptor_t, export_state) &&
                               offsetof(iots_plugin_descriptor_t, export_state) <
                                   offsetof(iots_plugin_descriptor_t, import_state));
IOTS_C99_ASSERT(abi_1_3_after_1_2, offsetof(iots_plugin_descriptor_t, write_sink) >
                                       offsetof(iots_plugin_descriptor_t, import_state));
IOTS_C99_ASSERT(abi_1_4_after_1_3, offsetof(iots_plugin_descriptor_t, gauges) >
                                       offsetof(iots_plugin_descriptor_t, write_sink));
IOTS_C99_ASSERT(abi_1_4_is_last, offsetof(iots_plugin_descriptor_t, gauges) + sizeof(void (*)(void)) ==
                                     sizeof(iots_plugin_descriptor_t));
IOTS_C99_ASSERT(host_1_3_after_1_2, offsetof(iots_host_api_t, sink_ack) >
                                        offsetof(iots_host_api_t, field_index));
IOTS_C99_ASSERT(host_1_3_is_last, offsetof(iots_host_api_t, sink_ack) + sizeof(void (*)(void)) ==
                                      sizeof(iots_host_api_t));

static int iots_c99_write(void *sink, const void *data, size_t len) {
    (void)sink;
    (void)data;
    return len > 0 ? 0 : 1;
}

int iots_c99_check(void);
int iots_c99_check(void) {
    iots_api_t api = {0};
    iots_plugin_descriptor_t descriptor = {0};
    iots_batch_view_t batch = {0};
    iots_state_write_fn write = iots_c99_write;
    api.struct_size = sizeof api;
    descriptor.struct_size = sizeof descriptor;
    descriptor.state_version = 1;
    descriptor.state_min_version = 1;
    descriptor.export_state = NULL;
    descriptor.import_state = NULL;
    batch.struct_size = sizeof batch;
    descriptor.kind = IOTS_PLUGIN_SINK;
    descriptor.write_sink = NULL;
    descriptor.gauges = NULL;
    return (int)(api.struct_size + descriptor.struct_size + batch.struct_size) > 0 && write != NULL ? IOTS_OK : 1;
}
