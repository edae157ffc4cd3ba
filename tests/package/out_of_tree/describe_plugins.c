/* Prints iots_plugins_describe_json() of the folder given as argv[1]; exits 1 on an error. */
#include <stdio.h>

#include "iotstream/iotstream.h"

int main(int argc, char **argv) {
    static char json[1 << 16];
    char errstr[512];
    size_t needed = 0;
    iots_err_t err;
    if (argc != 2) {
        fprintf(stderr, "usage: %s <plugin folder>\n", argv[0]);
        return 2;
    }
    err = iots_plugins_describe_json(argv[1], json, sizeof json, &needed, errstr, sizeof errstr);
    if (err != IOTS_OK) {
        fprintf(stderr, "%s: %s\n", iots_err_name(err), errstr);
        return 1;
    }
    printf("%s\n", json);
    return 0;
}
