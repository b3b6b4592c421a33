/*
 * fuzz_uri.c — URI parsing ("host:port", "[v6addr%zone]:port"), without name
 * lookups: whatever the bytes, udrpc__uri_split returns -EINVAL with a
 * reason, or a host shorter than the URI and a port, and the URI rebuilt
 * from those (bracketed again if it was) splits the same. An IPv6 literal
 * that udrpc__uri_parse accepts formats back to a URI that parses to the
 * same address.
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
    bool br, br2;
    const char *why = NULL;
    int ret = udrpc__uri_split(uri, host, &port, &br, &why);
    if (ret == -EINVAL) {
        if (!why)
            abort();
        return 0;
    }
    if (ret != 0 || strlen(host) >= strlen(uri))
        abort();
    char again[UDRPC_MAX_URI_LEN + 8];
    snprintf(again, sizeof(again), br ? "[%s]:%u" : "%s:%u", host, port);
    char host2[UDRPC_MAX_URI_LEN];
    uint16_t port2;
    if (strlen(again) < UDRPC_MAX_URI_LEN &&
        (udrpc__uri_split(again, host2, &port2, &br2, NULL) != 0 || strcmp(host, host2) != 0 ||
         port != port2 || br != br2))
        abort();
    /* Literals only (a name would be looked up): parse, format, parse. */
    union tp_addr a, b;
    if (br && udrpc__uri_parse(uri, &a, NULL) == 0) {
        char text[TP_ADDR_STRLEN];
        udrpc__addr_format(&a, text); /* may be longer: "%1" -> "%lo", "::ff:ffff" */
        if (strlen(text) < UDRPC_MAX_URI_LEN &&
            (udrpc__uri_parse(text, &b, NULL) != 0 || !udrpc__addr_equal(&a, &b)))
            abort();
    }
    return 0;
}
