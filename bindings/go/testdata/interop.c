/*
 * One store, two languages: the C side of interop_test.go.
 *
 *   interop write <store-dir>            save known events (one by one and as a batch)
 *                                        and a snapshot; print each event's JSON, one
 *                                        per line, in version order
 *   interop read <store-dir> <actor-id>  print the actor's events (the JSON array
 *                                        aether_get_events returns) on one line, then
 *                                        its latest snapshot's JSON (or "none")
 *
 * Built by the Go test with the C compiler cgo uses, against include/aether.h and
 * target/release/libaether.a. Exit status 0 on success, 1 on any failure (with the
 * library's message on stderr).
 */
#include <stdio.h>
#include <string.h>

#include "aether.h"

#define ACTOR "interop-from-c"

/* Events in the seed's JSON format, exactly as Go's encoding/json writes them (keys in
 * struct order, data/metadata keys sorted, HTML characters escaped), so the Go side can
 * compare them byte for byte with json.Marshal of what it reads. */
static const char *const single_events[] = {
    "{\"id\":\"c-1\",\"eventType\":\"OrderPlaced\",\"actorId\":\"" ACTOR "\",\"version\":1,"
    "\"data\":{\"items\":[{\"qty\":2,\"sku\":\"SKU-1\"}],\"total\":42.5},"
    "\"timestamp\":\"2024-03-15T09:26:53.123456789Z\"}",
    "{\"id\":\"c-2\",\"eventType\":\"NoData\",\"actorId\":\"" ACTOR "\",\"commandId\":\"cmd-7\","
    "\"version\":2,\"data\":null,\"metadata\":{\"causationId\":\"c-1\",\"correlationId\":\"corr-1\","
    "\"traceId\":\"trace-\\u003cx\\u003e\"},\"timestamp\":\"2024-03-15T14:56:53.000000001+05:30\"}",
    "{\"id\":\"c-3\",\"eventType\":\"Unicode\",\"actorId\":\"" ACTOR "\",\"version\":3,"
    "\"data\":{\"big\":1e+21,\"emoji\":\"\xf0\x9f\x8e\x89\",\"escapes\":\"tab\\tquote\\\"back\\\\slash\\u0026\","
    "\"neg\":-0.000001,\"nested\":{\"deep\":{\"flag\":true,\"none\":null}}},"
    "\"timestamp\":\"1999-12-31T16:00:00.5-08:00\"}",
};

static const char *const batch_events[] = {
    "{\"id\":\"c-4\",\"eventType\":\"Batch\",\"actorId\":\"" ACTOR "\",\"version\":4,"
    "\"data\":{},\"timestamp\":\"2024-03-15T09:26:53Z\"}",
    "{\"id\":\"c-5\",\"eventType\":\"Batch\",\"actorId\":\"" ACTOR "\",\"version\":5,"
    "\"data\":{\"n\":5},\"metadata\":{\"userId\":\"u-1\"},\"timestamp\":\"2024-03-15T09:26:54.1Z\"}",
};

static const char *const snapshot =
    "{\"actorId\":\"" ACTOR "\",\"version\":5,\"state\":{\"count\":5,\"last\":\"c-5\"},"
    "\"timestamp\":\"2024-03-15T10:26:54+01:00\"}";

static int fail(const char *what, aether_status status, aether_error *err) {
    fprintf(stderr, "interop: %s failed: %s (%s)\n", what, aether_status_str((int)status),
            aether_error_message(err));
    aether_error_free(err);
    return 1;
}

static int write_mode(const char *dir) {
    aether_store *store = NULL;
    aether_error *err = NULL;
    aether_status st = aether_store_open_sled(dir, NULL, &store, &err);
    if (st != AETHER_OK) {
        return fail("open", st, err);
    }
    size_t n_single = sizeof single_events / sizeof single_events[0];
    for (size_t i = 0; i < n_single; i++) {
        const char *json = single_events[i];
        st = aether_save_event(store, (const uint8_t *)json, strlen(json), NULL, NULL, &err);
        if (st != AETHER_OK) {
            aether_store_free(store);
            return fail("save_event", st, err);
        }
    }
    char batch[4096];
    size_t n_batch = sizeof batch_events / sizeof batch_events[0];
    strcpy(batch, "[");
    for (size_t i = 0; i < n_batch; i++) {
        if (i > 0) {
            strcat(batch, ",");
        }
        strcat(batch, batch_events[i]);
    }
    strcat(batch, "]");
    st = aether_save_events(store, (const uint8_t *)batch, strlen(batch), NULL, NULL, &err);
    if (st != AETHER_OK) {
        aether_store_free(store);
        return fail("save_events", st, err);
    }
    st = aether_save_snapshot(store, (const uint8_t *)snapshot, strlen(snapshot), &err);
    if (st != AETHER_OK) {
        aether_store_free(store);
        return fail("save_snapshot", st, err);
    }
    st = aether_store_close(store, &err);
    aether_store_free(store);
    if (st != AETHER_OK) {
        return fail("close", st, err);
    }
    for (size_t i = 0; i < n_single; i++) {
        printf("%s\n", single_events[i]);
    }
    for (size_t i = 0; i < n_batch; i++) {
        printf("%s\n", batch_events[i]);
    }
    printf("%s\n", snapshot);
    return 0;
}

static int read_mode(const char *dir, const char *actor) {
    aether_store *store = NULL;
    aether_error *err = NULL;
    aether_status st = aether_store_open_sled(dir, NULL, &store, &err);
    if (st != AETHER_OK) {
        return fail("open", st, err);
    }
    aether_bytes events = {NULL, 0};
    st = aether_get_events(store, (const uint8_t *)actor, strlen(actor), 0, &events, &err);
    if (st != AETHER_OK) {
        aether_store_free(store);
        return fail("get_events", st, err);
    }
    fwrite(events.ptr, 1, events.len, stdout);
    printf("\n");
    aether_bytes_free(&events);
    aether_bytes snap = {NULL, 0};
    st = aether_get_latest_snapshot(store, (const uint8_t *)actor, strlen(actor), &snap, &err);
    if (st == AETHER_OK) {
        fwrite(snap.ptr, 1, snap.len, stdout);
        printf("\n");
        aether_bytes_free(&snap);
    } else if (st == AETHER_NOT_FOUND) {
        aether_error_free(err);
        printf("none\n");
    } else {
        aether_store_free(store);
        return fail("get_latest_snapshot", st, err);
    }
    st = aether_store_close(store, &err);
    aether_store_free(store);
    if (st != AETHER_OK) {
        return fail("close", st, err);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "write") == 0) {
        return write_mode(argv[2]);
    }
    if (argc == 4 && strcmp(argv[1], "read") == 0) {
        return read_mode(argv[2], argv[3]);
    }
    fprintf(stderr, "usage: %s write <store-dir> | read <store-dir> <actor-id>\n", argv[0]);
    return 2;
}
