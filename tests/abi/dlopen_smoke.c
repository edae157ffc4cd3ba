/* A C99 host that dlopen()s libiotstream the way an existing gateway would: one dlsym for the
 * API table, a version check, then the embedded broker started and stopped through the table. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <iotstream/iotstream.h>

static int failures = 0;
static int checks = 0;
#define CHECK(cond, ...)                                   \
    do {                                                   \
        ++checks;                                          \
        if (!(cond)) {                                     \
            ++failures;                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                  \
            fprintf(stderr, "\n");                         \
        }                                                  \
    } while (0)

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "libiotstream.so.1";
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "FAIL: dlopen(%s): %s\n", path, dlerror());
        return 1;
    }
    iots_get_api_fn get_api;
    *(void **)(&get_api) = dlsym(lib, "iots_get_api"); /* POSIX-blessed object->function cast */
    if (!get_api) {
        fprintf(stderr, "FAIL: dlsym(iots_get_api): %s\n", dlerror());
        return 1;
    }

    char errstr[256];
    const iots_api_t *api = get_api(IOTS_ABI_MAJOR + 1, 0, errstr, sizeof errstr);
    CHECK(api == NULL, "a different ABI major must be refused");
    CHECK(strstr(errstr, "ABI major") != NULL, "the refusal says why, got '%s'", errstr);
    api = get_api(IOTS_ABI_MAJOR, IOTS_ABI_MINOR + 1, errstr, sizeof errstr);
    CHECK(api == NULL, "a newer ABI minor must be refused");
    CHECK(errstr[0] != '\0', "the refusal says why");

    api = get_api(IOTS_ABI_MAJOR, 0, errstr, sizeof errstr);
    if (!api) {
        fprintf(stderr, "FAIL: iots_get_api(%d, 0): %s\n", IOTS_ABI_MAJOR, errstr);
        return 1;
    }
    CHECK(api->struct_size >= sizeof(iots_api_t), "table smaller than this header's: %zu", api->struct_size);
    CHECK(api->abi_major == IOTS_ABI_MAJOR, "abi_major %d", api->abi_major);
    CHECK(api->version() > 0, "version mismatch");
    CHECK((api->version() >> 24) == (IOTS_VERSION >> 24), "loaded major differs from header major");
    CHECK(strlen(api->version_str()) >= 5, "version string '%s'", api->version_str());
    CHECK(strcmp(api->err_name(IOTS_ERR_CONFIG), "IOTS_ERR_CONFIG") == 0, "err_name");

    iots_broker_t *broker = NULL;
    iots_err_t err = api->broker_new("{\"brokers\": 2, \"topics\": [{\"name\": \"c-test\", \"partitions\": 3}]}",
                                     &broker, errstr, sizeof errstr);
    CHECK(err == IOTS_OK && broker != NULL, "broker_new: %s", errstr);
    if (broker) {
        const char *bootstrap = api->broker_bootstrap(broker);
        CHECK(strncmp(bootstrap, "127.0.0.1:", 10) == 0, "bootstrap '%s'", bootstrap);
        CHECK(api->broker_set_down(broker, 2, 1) == IOTS_OK, "broker 2 down");
        CHECK(api->broker_set_down(broker, 2, 0) == IOTS_OK, "broker 2 up");
        CHECK(api->broker_set_down(broker, 3, 1) == IOTS_ERR_INVALID_ARG, "broker 3 does not exist");
        api->broker_destroy(broker);
    }
    err = api->broker_new("{\"brokerz\": 1}", &broker, errstr, sizeof errstr);
    CHECK(err == IOTS_ERR_CONFIG, "unknown key refused, got %d", (int)err);
    CHECK(strstr(errstr, "'brokerz'") != NULL, "the message names the key: '%s'", errstr);

    dlclose(lib);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures == 0 ? 0 : 1;
}
