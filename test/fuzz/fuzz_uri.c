/*
 * fuzz_uri.c — URI parsing ("host:port"), without name lookups: whatever the
 * bytes, udrpc__uri_split returns -EINVAL or a host shorter than the URI
 * and a port, and splitting "host:port" rebuilt from those gives them back.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char uri[2 * UDRPC_MAX_URI_LEN];
    if (size >= sizeof(uri))
        size = sizeof(uri) - 1;
    memcpy(uri, data, size);
    uri[size] = '\0';
    char host[UDRPC_MAX_URI_LEN];
    uint16_t port;
    int ret = udrpc__uri_split(uri, host, &port);
    if (ret == -EINVAL)
        return 0;
    if (ret != 0 || strlen(host) >= strlen(uri))
        abort();
    char again[UDRPC_MAX_URI_LEN + 8];
    snprintf(again, sizeof(again), "%s:%u", host, port);
    char host2[UDRPC_MAX_URI_LEN];
    uint16_t port2;
    if (strlen(again) < UDRPC_MAX_URI_LEN &&
        (udrpc__uri_split(again, host2, &port2) != 0 || strcmp(host, host2) != 0 || port != port2))
        abort();
    return 0;
}
