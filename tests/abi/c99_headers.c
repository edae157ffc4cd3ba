/* Compiled with -std=c99 -pedantic -Werror: the public headers must stay plain C99. */
#include <iotstream/iotstream.h>
#include <iotstream/plugin.h>

int iots_c99_check(void);
int iots_c99_check(void) {
    iots_api_t api = {0};
    iots_plugin_descriptor_t descriptor = {0};
    iots_batch_view_t batch = {0};
    api.struct_size = sizeof api;
    descriptor.struct_size = sizeof descriptor;
    batch.struct_size = sizeof batch;
    return (int)(api.struct_size + descriptor.struct_size + batch.struct_size) > 0 ? IOTS_OK : 1;
}
