/*
 * Bad input never crashes, hangs or loses data: NULL for every pointer parameter,
 * invalid UTF-8, malformed and wrong-shaped JSON, oversized events, out-of-range numbers.
 * Every rejection leaves outputs untouched and the store unchanged and usable.
 */
#include "backends.h"

#include <unistd.h>

#define EV(buf, id, actor, version) event_json((buf), sizeof(buf), (id), (actor), (version))

/* Expect `call` to fail with `expected`, with an aether_error of that code whose message
 * mentions `needle`. `err` must be an aether_error * variable set to NULL. */
#define CHECK_FAILS(call, expected, err, needle)                                        \
  do {                                                                                  \
    CHECK_STATUS(call, expected);                                                       \
    CHECK((err) != NULL);                                                               \
    CHECK(aether_error_code(err) == (expected));                                        \
    if (strstr(aether_error_message(err), (needle)) == NULL) {                          \
      fprintf(stderr, "%s:%d: message %s lacks \"%s\"\n", __FILE__, __LINE__,          \
              aether_error_message(err), (needle));                                     \
      harness_current_failed = 1;                                                       \
    }                                                                                   \
    aether_error_free(err);                                                             \
    (err) = NULL;                                                                       \
  } while (0)

static const char ts[] = "\"timestamp\":\"2024-01-02T03:04:05Z\"";

/* The store holds exactly one event ("a" version 1) and nothing else. */
static void check_store_unchanged(aether_store *s) {
  int64_t version = -1;
  uint64_t sequence = 0;
  aether_bytes out = {NULL, 0};
  CHECK_OK(aether_get_latest_version(s, STR("a"), &version, NULL));
  CHECK(version == 1);
  CHECK_OK(aether_last_sequence(s, &sequence, NULL));
  CHECK(sequence == 1);
  CHECK_STATUS(aether_get_latest_snapshot(s, STR("a"), &out, NULL), AETHER_NOT_FOUND);
}

static aether_store *open_with_one_event(void) {
  char e[512];
  aether_store *s = open_backend(0);
  CHECK_OK(aether_save_event(s, STR(EV(e, "e1", "a", 1)), NULL, NULL, NULL));
  return s;
}

static void test_null_pointers(void) {
  aether_store *s = open_with_one_event();
  aether_store *none = NULL;
  aether_error *err = NULL;
  char e[512];
  int64_t version = 11;
  uint64_t sequence = 12;
  size_t count = 13;
  uint8_t marker = 0;
  aether_bytes out = {&marker, 14};
  aether_metrics m;
  aether_event_stored n = {0}, batch[2] = {{0}};
  const uint8_t *actor = NULL;
  size_t actor_len = 0;
  int64_t attempted = 0, current = 0;
  char *dir = make_temp_dir();

  EV(e, "e2", "a", 2);
  memset(&m, 0, sizeof(m));
  memset(&n, 0, sizeof(n));

  CHECK_FAILS(aether_store_open_memory(0, NULL, &err), AETHER_INVALID_ARGUMENT, err, "store_out");
  CHECK_FAILS(aether_store_open_sled(NULL, NULL, &none, &err), AETHER_INVALID_ARGUMENT, err,
              "path");
  CHECK_FAILS(aether_store_open_sled(dir, NULL, NULL, &err), AETHER_INVALID_ARGUMENT, err,
              "store_out");
  CHECK(none == NULL);
  CHECK_FAILS(aether_store_flush(NULL, &err), AETHER_INVALID_ARGUMENT, err, "store");
  CHECK_FAILS(aether_store_close(NULL, &err), AETHER_INVALID_ARGUMENT, err, "store");
  CHECK_FAILS(aether_store_metrics(NULL, &m, &err), AETHER_INVALID_ARGUMENT, err, "store");
  CHECK_FAILS(aether_store_metrics(s, NULL, &err), AETHER_INVALID_ARGUMENT, err, "metrics_out");

  CHECK_FAILS(aether_save_event(NULL, STR(e), &version, &sequence, &err), AETHER_INVALID_ARGUMENT,
              err, "store");
  CHECK_FAILS(aether_save_event(s, NULL, 0, &version, &sequence, &err), AETHER_INVALID_ARGUMENT,
              err, "json");
  CHECK_FAILS(aether_save_event(s, NULL, 10, &version, &sequence, &err), AETHER_INVALID_ARGUMENT,
              err, "json");
  CHECK_FAILS(aether_save_events(NULL, STR("[]"), &version, &sequence, &err),
              AETHER_INVALID_ARGUMENT, err, "store");
  CHECK_FAILS(aether_save_events(s, NULL, 2, &version, &sequence, &err), AETHER_INVALID_ARGUMENT,
              err, "json");

  CHECK_FAILS(aether_get_events(NULL, STR("a"), 0, &out, &err), AETHER_INVALID_ARGUMENT, err,
              "store");
  CHECK_FAILS(aether_get_events(s, NULL, 1, 0, &out, &err), AETHER_INVALID_ARGUMENT, err,
              "actor_id");
  CHECK_FAILS(aether_get_events(s, STR("a"), 0, NULL, &err), AETHER_INVALID_ARGUMENT, err,
              "events_out");
  CHECK_FAILS(aether_get_events_with_errors(NULL, STR("a"), 0, &out, &err),
              AETHER_INVALID_ARGUMENT, err, "store");
  CHECK_FAILS(aether_get_events_with_errors(s, NULL, 0, 0, &out, &err), AETHER_INVALID_ARGUMENT,
              err, "actor_id");
  CHECK_FAILS(aether_get_events_with_errors(s, STR("a"), 0, NULL, &err), AETHER_INVALID_ARGUMENT,
              err, "result_out");
  CHECK_FAILS(aether_get_latest_version(NULL, STR("a"), &version, &err), AETHER_INVALID_ARGUMENT,
              err, "store");
  CHECK_FAILS(aether_get_latest_version(s, NULL, 1, &version, &err), AETHER_INVALID_ARGUMENT, err,
              "actor_id");
  CHECK_FAILS(aether_get_latest_version(s, STR("a"), NULL, &err), AETHER_INVALID_ARGUMENT, err,
              "version_out");
  CHECK_FAILS(aether_read_all(NULL, 0, 10, &out, &err), AETHER_INVALID_ARGUMENT, err, "store");
  CHECK_FAILS(aether_read_all(s, 0, 10, NULL, &err), AETHER_INVALID_ARGUMENT, err, "events_out");
  CHECK_FAILS(aether_last_sequence(NULL, &sequence, &err), AETHER_INVALID_ARGUMENT, err, "store");
  CHECK_FAILS(aether_last_sequence(s, NULL, &err), AETHER_INVALID_ARGUMENT, err, "sequence_out");

  CHECK_FAILS(aether_save_snapshot(NULL, STR("{}"), &err), AETHER_INVALID_ARGUMENT, err, "store");
  CHECK_FAILS(aether_save_snapshot(s, NULL, 2, &err), AETHER_INVALID_ARGUMENT, err, "json");
  CHECK_FAILS(aether_get_latest_snapshot(NULL, STR("a"), &out, &err), AETHER_INVALID_ARGUMENT, err,
              "store");
  CHECK_FAILS(aether_get_latest_snapshot(s, NULL, 1, &out, &err), AETHER_INVALID_ARGUMENT, err,
              "actor_id");
  CHECK_FAILS(aether_get_latest_snapshot(s, STR("a"), NULL, &err), AETHER_INVALID_ARGUMENT, err,
              "snapshot_out");

  CHECK_FAILS(aether_poll_event_stored(NULL, 0, &n, &err), AETHER_INVALID_ARGUMENT, err, "store");
  CHECK_FAILS(aether_poll_event_stored(s, 0, NULL, &err), AETHER_INVALID_ARGUMENT, err,
              "event_out");
  CHECK_FAILS(aether_poll_event_stored_batch(NULL, 0, batch, 2, &count, &err),
              AETHER_INVALID_ARGUMENT, err, "store");
  CHECK_FAILS(aether_poll_event_stored_batch(s, 0, NULL, 2, &count, &err), AETHER_INVALID_ARGUMENT,
              err, "events_out");
  CHECK_FAILS(aether_poll_event_stored_batch(s, 0, batch, 2, NULL, &err), AETHER_INVALID_ARGUMENT,
              err, "count_out");

  /* Error accessors. */
  CHECK(aether_error_code(NULL) == AETHER_INVALID_ARGUMENT);
  CHECK(aether_error_message(NULL) != NULL && aether_error_message(NULL)[0] == '\0');
  CHECK_STATUS(aether_error_conflict(NULL, &actor, &actor_len, &attempted, &current),
               AETHER_INVALID_ARGUMENT);
  CHECK_STATUS(aether_save_event(s, STR(EV(e, "x", "a", 1)), NULL, NULL, &err),
               AETHER_VERSION_CONFLICT);
  CHECK_STATUS(aether_error_conflict(err, NULL, &actor_len, &attempted, &current),
               AETHER_INVALID_ARGUMENT);
  CHECK_STATUS(aether_error_conflict(err, &actor, NULL, &attempted, &current),
               AETHER_INVALID_ARGUMENT);
  CHECK_STATUS(aether_error_conflict(err, &actor, &actor_len, NULL, &current),
               AETHER_INVALID_ARGUMENT);
  CHECK_STATUS(aether_error_conflict(err, &actor, &actor_len, &attempted, NULL),
               AETHER_INVALID_ARGUMENT);
  CHECK(actor == NULL && actor_len == 0 && attempted == 0 && current == 0); /* untouched */
  aether_error_free(err);
  err = NULL;
  CHECK_STATUS(aether_get_events(s, STR("a"), -1, &out, &err), AETHER_INVALID_ARGUMENT);
  CHECK_STATUS(aether_error_conflict(err, &actor, &actor_len, &attempted, &current),
               AETHER_NOT_FOUND);
  aether_error_free(err);
  err = NULL;

  /* Outputs were never touched; nothing was written. */
  CHECK(version == 11 && sequence == 12 && count == 13 && out.ptr == &marker && out.len == 14);
  CHECK(m.events_saved == 0 && n.event_id == NULL);
  check_store_unchanged(s);
  close_backend(s);
  remove_temp_dir(dir);
}

static void test_invalid_utf8(void) {
  aether_store *s = open_with_one_event();
  aether_error *err = NULL;
  int64_t version = 5;
  uint8_t marker = 0;
  aether_bytes out = {&marker, 1};
  static const char *const bad[] = {"\xff", "a\xfe", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82"};
  char json[512];
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    CHECK_FAILS(aether_get_events(s, STR(bad[i]), 0, &out, &err), AETHER_INVALID_ARGUMENT, err,
                "UTF-8");
    CHECK_FAILS(aether_get_events_with_errors(s, STR(bad[i]), 0, &out, &err),
                AETHER_INVALID_ARGUMENT, err, "UTF-8");
    CHECK_FAILS(aether_get_latest_version(s, STR(bad[i]), &version, &err), AETHER_INVALID_ARGUMENT,
                err, "UTF-8");
    CHECK_FAILS(aether_get_latest_snapshot(s, STR(bad[i]), &out, &err), AETHER_INVALID_ARGUMENT,
                err, "UTF-8");

    /* Invalid UTF-8 inside the JSON: in a string value, and in the actor ID. */
    snprintf(json, sizeof(json),
             "{\"id\":\"%s\",\"eventType\":\"T\",\"actorId\":\"a\",\"version\":2,%s}", bad[i], ts);
    CHECK_FAILS(aether_save_event(s, STR(json), &version, NULL, &err), AETHER_INVALID_ARGUMENT, err,
                "UTF-8");
    snprintf(json, sizeof(json),
             "[{\"id\":\"e\",\"eventType\":\"T\",\"actorId\":\"%s\",\"version\":2,%s}]", bad[i], ts);
    CHECK_FAILS(aether_save_events(s, STR(json), &version, NULL, &err), AETHER_INVALID_ARGUMENT, err,
                "UTF-8");
    snprintf(json, sizeof(json), "{\"actorId\":\"%s\",\"version\":2,\"state\":null,%s}", bad[i], ts);
    CHECK_FAILS(aether_save_snapshot(s, STR(json), &err), AETHER_INVALID_ARGUMENT, err, "UTF-8");
  }
  CHECK(version == 5 && out.ptr == &marker);
  check_store_unchanged(s);
  close_backend(s);
}

static void test_malformed_json(void) {
  aether_store *s = open_with_one_event();
  aether_error *err = NULL;
  int64_t version = 5;
  uint64_t sequence = 6;
  char buf[512];
  size_t i;
  static const char *const bad_events[] = {
      "",
      "{",
      "null",
      "42",
      "\"an event\"",
      "[]",
      "[{\"id\":\"e\",\"eventType\":\"T\",\"actorId\":\"a\",\"version\":2,"
      "\"timestamp\":\"2024-01-02T03:04:05Z\"}]",
      /* missing actorId */
      "{\"id\":\"e\",\"eventType\":\"T\",\"version\":2,\"timestamp\":\"2024-01-02T03:04:05Z\"}",
      /* version as a string, a fraction, out of range */
      "{\"id\":\"e\",\"eventType\":\"T\",\"actorId\":\"a\",\"version\":\"2\","
      "\"timestamp\":\"2024-01-02T03:04:05Z\"}",
      "{\"id\":\"e\",\"eventType\":\"T\",\"actorId\":\"a\",\"version\":2.5,"
      "\"timestamp\":\"2024-01-02T03:04:05Z\"}",
      "{\"id\":\"e\",\"eventType\":\"T\",\"actorId\":\"a\",\"version\":1e30,"
      "\"timestamp\":\"2024-01-02T03:04:05Z\"}",
      /* wrong-typed fields */
      "{\"id\":7,\"eventType\":\"T\",\"actorId\":\"a\",\"version\":2,"
      "\"timestamp\":\"2024-01-02T03:04:05Z\"}",
      "{\"id\":\"e\",\"eventType\":\"T\",\"actorId\":\"a\",\"version\":2,\"data\":[1],"
      "\"timestamp\":\"2024-01-02T03:04:05Z\"}",
      "{\"id\":\"e\",\"eventType\":\"T\",\"actorId\":\"a\",\"version\":2,\"metadata\":{\"k\":1},"
      "\"timestamp\":\"2024-01-02T03:04:05Z\"}",
      "{\"id\":\"e\",\"eventType\":\"T\",\"actorId\":\"a\",\"version\":2,\"timestamp\":\"yesterday\"}",
      "{\"id\":\"e\",\"eventType\":\"T\",\"actorId\":\"a\",\"version\":2}",
      /* empty actor ID */
      "{\"id\":\"e\",\"eventType\":\"T\",\"actorId\":\"\",\"version\":2,"
      "\"timestamp\":\"2024-01-02T03:04:05Z\"}",
      /* trailing garbage */
      "{\"id\":\"e\",\"eventType\":\"T\",\"actorId\":\"a\",\"version\":2,"
      "\"timestamp\":\"2024-01-02T03:04:05Z\"} x",
  };

  for (i = 0; i < sizeof(bad_events) / sizeof(bad_events[0]); i++) {
    aether_status got = aether_save_event(s, STR(bad_events[i]), &version, &sequence, &err);
    if (got != AETHER_INVALID_EVENT || aether_error_code(err) != AETHER_INVALID_EVENT) {
      fprintf(stderr, "%s:%d: event #%u: got %s (%s)\n", __FILE__, __LINE__, (unsigned)i,
              aether_status_str((int)got), aether_error_message(err));
      harness_current_failed = 1;
    }
    aether_error_free(err);
    err = NULL;
  }
  /* A JSON string with an embedded NUL byte. */
  CHECK_STATUS(aether_save_event(s, (const uint8_t *)"{\0}", 3, NULL, NULL, NULL),
               AETHER_INVALID_EVENT);

  /* Batches: not an array, an element of the wrong shape. */
  CHECK_FAILS(aether_save_events(s, STR("{}"), &version, &sequence, &err), AETHER_INVALID_EVENT,
              err, "batch");
  snprintf(buf, sizeof(buf), "[%s,7]", event_json(buf + 256, 256, "e", "a", 2));
  CHECK_FAILS(aether_save_events(s, STR(buf), &version, &sequence, &err), AETHER_INVALID_EVENT, err,
              "batch");

  /* Snapshots: wrong shapes and types. */
  CHECK_FAILS(aether_save_snapshot(s, STR("[]"), &err), AETHER_INVALID_EVENT, err, "snapshot");
  CHECK_FAILS(aether_save_snapshot(s,
                                   STR("{\"actorId\":\"a\",\"version\":\"1\",\"state\":null,"
                                       "\"timestamp\":\"2024-01-02T03:04:05Z\"}"),
                                   &err),
              AETHER_INVALID_EVENT, err, "snapshot");
  CHECK_FAILS(aether_save_snapshot(s,
                                   STR("{\"actorId\":\"a\",\"version\":1,\"state\":[],"
                                       "\"timestamp\":\"2024-01-02T03:04:05Z\"}"),
                                   &err),
              AETHER_INVALID_EVENT, err, "snapshot");

  CHECK(version == 5 && sequence == 6);
  check_store_unchanged(s);
  close_backend(s);
}

/* Deeply nested JSON must be refused, not overflow the stack. */
static void test_deeply_nested_json(void) {
  aether_store *s = open_with_one_event();
  size_t depth = 1000000, i;
  char *json = (char *)malloc(2 * depth);
  CHECK(json != NULL);
  for (i = 0; i < depth; i++) {
    json[i] = '[';
    json[2 * depth - 1 - i] = ']';
  }
  CHECK_STATUS(aether_save_event(s, (const uint8_t *)json, 2 * depth, NULL, NULL, NULL),
               AETHER_INVALID_EVENT);
  CHECK_STATUS(aether_save_events(s, (const uint8_t *)json, 2 * depth, NULL, NULL, NULL),
               AETHER_INVALID_EVENT);
  for (i = 0; i < depth; i++) {
    json[i] = i == 0 ? '{' : '[';
  }
  CHECK_STATUS(aether_save_snapshot(s, (const uint8_t *)json, 2 * depth, NULL),
               AETHER_INVALID_EVENT);
  free(json);
  check_store_unchanged(s);
  close_backend(s);
}

/* A 16 MiB event (the record limit is 1 MiB) is refused cleanly. */
static void test_oversized_event(void) {
  aether_store *s = open_with_one_event();
  aether_error *err = NULL;
  size_t blob = (size_t)16 << 20, len;
  const char *head = "{\"id\":\"big\",\"eventType\":\"T\",\"actorId\":\"a\",\"version\":2,"
                     "\"data\":{\"blob\":\"";
  const char *tail = "\"},\"timestamp\":\"2024-01-02T03:04:05Z\"}";
  char *json = (char *)malloc(strlen(head) + blob + strlen(tail) + 2 + 1);
  char *batch;
  int64_t version = 5;
  uint64_t sequence = 6;
  char small[512];

  CHECK(json != NULL);
  strcpy(json, head);
  memset(json + strlen(head), 'x', blob);
  strcpy(json + strlen(head) + blob, tail);
  len = strlen(json);
  CHECK_FAILS(aether_save_event(s, (const uint8_t *)json, len, &version, &sequence, &err),
              AETHER_INVALID_EVENT, err, "limit");

  /* The same event inside a batch. */
  batch = (char *)malloc(len + 3);
  CHECK(batch != NULL);
  batch[0] = '[';
  memcpy(batch + 1, json, len);
  batch[len + 1] = ']';
  CHECK_FAILS(aether_save_events(s, (const uint8_t *)batch, len + 2, &version, &sequence, &err),
              AETHER_INVALID_EVENT, err, "limit");
  free(batch);

  /* A 16 MiB snapshot. */
  head = "{\"actorId\":\"a\",\"version\":1,\"state\":{\"blob\":\"";
  memcpy(json, head, strlen(head));
  memset(json + strlen(head), 'x', len - strlen(head));
  strcpy(json + len - strlen(tail), tail);
  CHECK_FAILS(aether_save_snapshot(s, (const uint8_t *)json, len, &err), AETHER_INVALID_EVENT, err,
              "limit");
  free(json);

  /* A length no buffer can have is refused without reading. */
  CHECK_STATUS(aether_save_event(s, (const uint8_t *)small, SIZE_MAX, NULL, NULL, NULL),
               AETHER_INVALID_ARGUMENT);

  CHECK(version == 5 && sequence == 6);
  check_store_unchanged(s);
  /* Still usable. */
  CHECK_OK(aether_save_event(s, STR(EV(small, "e2", "a", 2)), &version, &sequence, NULL));
  CHECK(version == 2 && sequence == 2);
  close_backend(s);
}

static void test_oversized_actor_id(void) {
  aether_store *s = open_with_one_event();
  size_t n = 5000;
  char *actor = (char *)malloc(n + 1);
  char *json = (char *)malloc(n + 256);
  int64_t version = 7;
  aether_bytes out = {NULL, 0};
  CHECK(actor != NULL && json != NULL);
  memset(actor, 'q', n);
  actor[n] = '\0';
  event_json(json, n + 256, "e", actor, 1);
  CHECK_STATUS(aether_save_event(s, STR(json), &version, NULL, NULL), AETHER_INVALID_EVENT);
  CHECK(version == 7);
  /* Reading an unknown long actor is just empty. */
  CHECK_OK(aether_get_events(s, STR(actor), 0, &out, NULL));
  CHECK_BYTES_EQ(out, "[]");
  aether_bytes_free(&out);
  free(actor);
  free(json);
  check_store_unchanged(s);
  close_backend(s);
}

static void test_out_of_range_numbers(void) {
  aether_store *s = open_with_one_event();
  aether_error *err = NULL;
  uint8_t marker = 0;
  aether_bytes out = {&marker, 3};
  aether_event_stored n = {0}, batch[2] = {{0}};
  size_t count = 9;

  memset(&n, 0, sizeof(n));
  CHECK_FAILS(aether_get_events(s, STR("a"), -1, &out, &err), AETHER_INVALID_ARGUMENT, err,
              "from_version");
  CHECK_FAILS(aether_get_events(s, STR("a"), INT64_MIN, &out, &err), AETHER_INVALID_ARGUMENT, err,
              "from_version");
  CHECK_FAILS(aether_get_events_with_errors(s, STR("a"), -1, &out, &err), AETHER_INVALID_ARGUMENT,
              err, "from_version");
  CHECK_FAILS(aether_poll_event_stored(s, -1, &n, &err), AETHER_INVALID_ARGUMENT, err,
              "timeout_ms");
  CHECK_FAILS(aether_poll_event_stored(s, INT64_MIN, &n, &err), AETHER_INVALID_ARGUMENT, err,
              "timeout_ms");
  CHECK_FAILS(aether_poll_event_stored_batch(s, -1, batch, 2, &count, &err),
              AETHER_INVALID_ARGUMENT, err, "timeout_ms");
  CHECK_FAILS(aether_poll_event_stored_batch(s, 0, batch, 0, &count, &err),
              AETHER_INVALID_ARGUMENT, err, "capacity");
  CHECK(out.ptr == &marker && out.len == 3 && n.event_id == NULL && count == 9);

  /* INT64_MAX is a valid from_version: nothing is that new. */
  CHECK_OK(aether_get_events(s, STR("a"), INT64_MAX, &out, NULL));
  CHECK_BYTES_EQ(out, "[]");
  aether_bytes_free(&out);
  /* The notification of the one event is still there, polled exactly once. */
  CHECK_OK(aether_poll_event_stored(s, 0, &n, NULL));
  CHECK(n.sequence == 1);
  aether_event_stored_clear(&n);
  CHECK_STATUS(aether_poll_event_stored(s, 0, &n, NULL), AETHER_POLL_TIMEOUT);
  close_backend(s);
}

static void test_bad_sled_options(void) {
  aether_sled_options o;
  aether_store *s = NULL;
  aether_error *err = NULL;
  char *dir = make_temp_dir();
  char file[4096];
  FILE *f;

  aether_sled_options_default(&o);
  o.durability = 7;
  CHECK_FAILS(aether_store_open_sled(dir, &o, &s, &err), AETHER_INVALID_ARGUMENT, err,
              "durability");
  o.durability = -1;
  CHECK_FAILS(aether_store_open_sled(dir, &o, &s, &err), AETHER_INVALID_ARGUMENT, err,
              "durability");
  CHECK_FAILS(aether_store_open_sled("", NULL, &s, &err), AETHER_INVALID_ARGUMENT, err, "path");
  /* A path that is a regular file cannot hold a store. */
  snprintf(file, sizeof(file), "%s/plain-file", dir);
  f = fopen(file, "w");
  CHECK(f != NULL);
  if (f != NULL) {
    fclose(f);
  }
  CHECK_FAILS(aether_store_open_sled(file, NULL, &s, &err), AETHER_STORAGE, err, "plain-file");
  CHECK(s == NULL);
  remove_temp_dir(dir);
}

/* Everything the library writes to stderr between quiet_begin() and quiet_end(): an
 * option value must never make it print (a Rust panic message, an allocation failure). */
static int quiet_saved_fd = -1;
static FILE *quiet_file;

static void quiet_begin(void) {
  fflush(stderr);
  quiet_file = tmpfile();
  CHECK(quiet_file != NULL);
  quiet_saved_fd = dup(2);
  CHECK(quiet_file != NULL && dup2(fileno(quiet_file), 2) == 2);
}

static long quiet_end(void) {
  long printed;
  fflush(stderr);
  dup2(quiet_saved_fd, 2);
  close(quiet_saved_fd);
  printed = ftell(quiet_file);
  fclose(quiet_file);
  return printed;
}

/* Open a sled store in `dir` with `o`; expect AETHER_INVALID_ARGUMENT naming `field`
 * and the edge of its range. */
#define CHECK_SLED_OPTION_REFUSED(dir, o, field, range)                                    \
  do {                                                                                     \
    aether_store *s_ = NULL;                                                               \
    aether_error *e_ = NULL;                                                               \
    CHECK_STATUS(aether_store_open_sled((dir), &(o), &s_, &e_), AETHER_INVALID_ARGUMENT);  \
    CHECK(s_ == NULL && e_ != NULL);                                                       \
    CHECK(strstr(aether_error_message(e_), field) != NULL);                                \
    CHECK(strstr(aether_error_message(e_), range) != NULL);                                \
    aether_error_free(e_);                                                                 \
  } while (0)

/* Every option outside its documented range is AETHER_INVALID_ARGUMENT naming the option
 * and its range; none aborts, panics or prints. (1 << 32 used to abort the host with a
 * failed 377 GB allocation; SIZE_MAX and a 1-byte cache came back as AETHER_PANIC.) */
static void test_out_of_range_options(void) {
  const size_t capacities[] = {
      ((size_t)1 << 24) + 1,
#if SIZE_MAX > 0xFFFFFFFFu
      (size_t)1 << 32, (size_t)1 << 40,
#endif
      SIZE_MAX};
  const uint64_t caches[] = {1, 255, 256, ((uint64_t)1 << 20) - 1, ((uint64_t)1 << 40) + 1,
                             UINT64_MAX};
  const uint64_t lock_timeouts[] = {3600001, UINT64_MAX};
  char *dir = make_temp_dir();
  aether_sled_options o;
  aether_jetstream_options jo;
  aether_store *s = NULL;
  aether_error *err = NULL;
  size_t i;

  quiet_begin();
  for (i = 0; i < sizeof(capacities) / sizeof(capacities[0]); i++) {
    CHECK_FAILS(aether_store_open_memory(capacities[i], &s, &err), AETHER_INVALID_ARGUMENT, err,
                "event_stored_capacity is");
    CHECK(s == NULL);
    CHECK_FAILS(aether_store_open_memory(capacities[i], &s, &err), AETHER_INVALID_ARGUMENT, err,
                "between 1 and 16777216");
    aether_sled_options_default(&o);
    o.event_stored_capacity = capacities[i];
    CHECK_SLED_OPTION_REFUSED(dir, o, "options->event_stored_capacity",
                              "between 1 and 16777216");
    aether_jetstream_options_default(&jo);
    jo.event_stored_capacity = capacities[i];
    jo.connect_timeout_ms = 100;
    CHECK_FAILS(aether_store_open_jetstream("nats://127.0.0.1:1", &jo, &s, &err),
                AETHER_INVALID_ARGUMENT, err, "options->event_stored_capacity");
    CHECK(s == NULL);
  }
  for (i = 0; i < sizeof(caches) / sizeof(caches[0]); i++) {
    aether_sled_options_default(&o);
    o.cache_capacity_bytes = caches[i];
    CHECK_SLED_OPTION_REFUSED(dir, o, "options->cache_capacity_bytes",
                              "between 1048576 and 1099511627776");
  }
  for (i = 0; i < sizeof(lock_timeouts) / sizeof(lock_timeouts[0]); i++) {
    aether_sled_options_default(&o);
    o.lock_timeout_ms = lock_timeouts[i];
    CHECK_SLED_OPTION_REFUSED(dir, o, "options->lock_timeout_ms", "between 1 and 3600000");
  }
  CHECK(quiet_end() == 0);

  /* The edges of each range open (the largest capacity costs nothing up front). */
  CHECK_OK(aether_store_open_memory((size_t)1 << 24, &s, NULL));
  aether_store_free(s);
  s = NULL;
  aether_sled_options_default(&o);
  o.event_stored_capacity = (size_t)1 << 24;
  o.cache_capacity_bytes = (uint64_t)1 << 20;
  o.lock_timeout_ms = 3600000;
  CHECK_OK(aether_store_open_sled(dir, &o, &s, NULL));
  aether_store_free(s);
  remove_temp_dir(dir);
}

/* A malformed JetStream URL is the caller's mistake, found before connecting, not an
 * unreachable server (AETHER_UNAVAILABLE, as "nats://" used to be). */
static void test_malformed_jetstream_urls(void) {
  const char *const urls[] = {"nats://",
                              "nats://:4222",
                              "tls://",
                              "http://127.0.0.1:4222",
                              "nats://127.0.0.1:99999",
                              "nats://127.0.0.1:4222/stream",
                              "nats://127.0.0.1:4222,nats://",
                              " , "};
  aether_jetstream_options o;
  aether_store *s = NULL;
  aether_error *err = NULL;
  size_t i;

  aether_jetstream_options_default(&o);
  o.connect_timeout_ms = 200;
  for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
    CHECK_FAILS(aether_store_open_jetstream(urls[i], &o, &s, &err), AETHER_INVALID_ARGUMENT, err,
                "url");
    CHECK(s == NULL);
  }
}

/* Bad arguments to the append, commit, range, filtered and snapshot-history functions:
 * each a clear status naming the problem, outputs untouched, nothing written. */
static void test_append_bad_input(void) {
  aether_store *s = open_with_one_event();
  aether_error *err = NULL;
  char e2[512], e0[512], b2[512], one[600], mixed[1200], foreign[600];
  aether_commit_result r = {3, 33, 333};
  int64_t last = -4, lasts[2] = {-5, -5};
  uint8_t marker = 0;
  aether_bytes out = {&marker, 6};
  aether_commit_entry entries[2];
  aether_event_filter f;
  aether_str types[2] = {{(const uint8_t *)"T", 1}, {(const uint8_t *)"\xff", 1}};

  snprintf(one, sizeof(one), "[%s]", EV(e2, "e2", "a", 2));
  snprintf(mixed, sizeof(mixed), "[%s,%s]", EV(e0, "auto", "a", 0), e2);
  snprintf(foreign, sizeof(foreign), "[%s]", EV(b2, "b2", "b", 2));

  /* An unknown expected mode. */
  CHECK_FAILS(aether_append(s, STR("a"), 99, 0, STR(one), &r, &last, &err),
              AETHER_INVALID_ARGUMENT, err, "expected_mode");
  CHECK_FAILS(aether_append(s, STR("a"), -1, 0, STR(one), &r, &last, &err),
              AETHER_INVALID_ARGUMENT, err, "expected_mode");
  entries[0].actor_id = (const uint8_t *)"a";
  entries[0].actor_id_len = 1;
  entries[0].expected_mode = 99;
  entries[0].expected_version = 0;
  entries[0].events_json = (const uint8_t *)one;
  entries[0].events_json_len = strlen(one);
  CHECK_FAILS(aether_commit(s, entries, 1, &r, lasts, &err), AETHER_INVALID_ARGUMENT, err,
              "expected_mode");
  /* A negative exact version. */
  CHECK_FAILS(aether_append(s, STR("a"), AETHER_EXPECT_EXACT, -1, STR(one), &r, &last, &err),
              AETHER_INVALID_ARGUMENT, err, "0 or more");
  entries[0].expected_mode = AETHER_EXPECT_EXACT;
  entries[0].expected_version = INT64_MIN;
  CHECK_FAILS(aether_commit(s, entries, 1, &r, lasts, &err), AETHER_INVALID_ARGUMENT, err,
              "0 or more");
  /* Version 0 mixed with explicit versions, in either order. */
  CHECK_FAILS(aether_append(s, STR("a"), AETHER_EXPECT_ANY, 0, STR(mixed), &r, &last, &err),
              AETHER_INVALID_EVENT, err, "mixed");
  snprintf(mixed, sizeof(mixed), "[%s,%s]", e2, e0);
  CHECK_FAILS(aether_append(s, STR("a"), AETHER_EXPECT_ANY, 0, STR(mixed), &r, &last, &err),
              AETHER_INVALID_EVENT, err, "mixed");
  /* An event of another actor than the entry's. */
  CHECK_FAILS(aether_append(s, STR("a"), AETHER_EXPECT_ANY, 0, STR(foreign), &r, &last, &err),
              AETHER_INVALID_EVENT, err, "actor");
  /* Two entries for one actor (one condition-only). */
  entries[0].expected_mode = AETHER_EXPECT_ANY;
  entries[0].expected_version = 0;
  entries[1] = entries[0];
  entries[1].events_json = NULL;
  entries[1].events_json_len = 0;
  CHECK_FAILS(aether_commit(s, entries, 2, &r, lasts, &err), AETHER_INVALID_ARGUMENT, err,
              "two entries");
  /* No entries. */
  CHECK_FAILS(aether_commit(s, NULL, 1, &r, lasts, &err), AETHER_INVALID_ARGUMENT, err,
              "entries");
  CHECK_FAILS(aether_commit(s, NULL, 0, &r, lasts, &err), AETHER_INVALID_ARGUMENT, err,
              "entries");
  CHECK_FAILS(aether_commit(s, entries, 0, &r, lasts, &err), AETHER_INVALID_ARGUMENT, err,
              "entries_len");
  /* NULL pointers with a length, in an entry or the call. */
  entries[1].actor_id = (const uint8_t *)"c";
  entries[1].events_json_len = 5;
  CHECK_FAILS(aether_commit(s, entries, 2, &r, lasts, &err), AETHER_INVALID_ARGUMENT, err,
              "events_json");
  entries[1].events_json_len = 0;
  entries[1].actor_id = NULL;
  CHECK_FAILS(aether_commit(s, entries, 2, &r, lasts, &err), AETHER_INVALID_ARGUMENT, err,
              "actor_id");
  CHECK_FAILS(aether_append(s, STR("a"), AETHER_EXPECT_ANY, 0, NULL, 0, &r, &last, &err),
              AETHER_INVALID_ARGUMENT, err, "events_json");
  CHECK_FAILS(aether_append(s, NULL, 1, AETHER_EXPECT_ANY, 0, STR(one), &r, &last, &err),
              AETHER_INVALID_ARGUMENT, err, "actor_id");
  CHECK_FAILS(aether_append(NULL, STR("a"), AETHER_EXPECT_ANY, 0, STR(one), &r, &last, &err),
              AETHER_INVALID_ARGUMENT, err, "store");
  CHECK_FAILS(aether_append(s, STR("\xff"), AETHER_EXPECT_ANY, 0, STR(one), &r, &last, &err),
              AETHER_INVALID_ARGUMENT, err, "UTF-8");
  CHECK_FAILS(aether_append(s, STR("a"), AETHER_EXPECT_ANY, 0, STR("[7]"), &r, &last, &err),
              AETHER_INVALID_EVENT, err, "events");
  CHECK(r.already_appended == 3 && r.first_sequence == 33 && r.last_sequence == 333);
  CHECK(last == -4 && lasts[0] == -5 && lasts[1] == -5);

  /* Ranges: reversed, negative from, an unknown direction, NULL outputs. */
  CHECK_FAILS(aether_get_events_range(s, STR("a"), 5, 4, SIZE_MAX, AETHER_FORWARD, &out, &err),
              AETHER_INVALID_ARGUMENT, err, "above");
  CHECK_FAILS(aether_get_events_range(s, STR("a"), -1, 4, SIZE_MAX, AETHER_FORWARD, &out, &err),
              AETHER_INVALID_ARGUMENT, err, "from_version");
  CHECK_FAILS(aether_get_events_range(s, STR("a"), 1, 4, SIZE_MAX, 2, &out, &err),
              AETHER_INVALID_ARGUMENT, err, "direction");
  CHECK_FAILS(aether_get_events_range(s, STR("a"), 1, 4, SIZE_MAX, -1, &out, &err),
              AETHER_INVALID_ARGUMENT, err, "direction");
  CHECK_FAILS(aether_get_events_range(s, STR("a"), 1, 4, 1, AETHER_FORWARD, NULL, &err),
              AETHER_INVALID_ARGUMENT, err, "events_out");
  CHECK_FAILS(aether_get_events_range(s, NULL, 1, 1, 4, 1, AETHER_FORWARD, &out, &err),
              AETHER_INVALID_ARGUMENT, err, "actor_id");

  /* Filters: NULL fields with a nonzero length, a type that is not UTF-8. */
  memset(&f, 0, sizeof(f));
  f.event_types_len = 2;
  CHECK_FAILS(aether_read_all_filtered(s, 1, 10, &f, &out, &err), AETHER_INVALID_ARGUMENT, err,
              "event_types");
  f.event_types_len = 0;
  f.actor_prefix_len = 3;
  CHECK_FAILS(aether_read_all_filtered(s, 1, 10, &f, &out, &err), AETHER_INVALID_ARGUMENT, err,
              "actor_prefix");
  f.actor_prefix_len = 0;
  f.event_types = types;
  f.event_types_len = 2;
  CHECK_FAILS(aether_read_all_filtered(s, 1, 10, &f, &out, &err), AETHER_INVALID_ARGUMENT, err,
              "event_types");
  CHECK_FAILS(aether_read_all_filtered(s, 1, 10, NULL, NULL, &err), AETHER_INVALID_ARGUMENT, err,
              "events_out");
  CHECK_FAILS(aether_read_all_filtered(NULL, 1, 10, NULL, &out, &err), AETHER_INVALID_ARGUMENT,
              err, "store");

  /* Snapshot history: NULL pointers. */
  CHECK_FAILS(aether_get_snapshot(s, STR("a"), 1, NULL, &err), AETHER_INVALID_ARGUMENT, err,
              "snapshot_out");
  CHECK_FAILS(aether_get_snapshot(s, NULL, 1, 1, &out, &err), AETHER_INVALID_ARGUMENT, err,
              "actor_id");
  CHECK(out.ptr == &marker && out.len == 6);

  /* The conflict accessors refuse NULL, and find nothing in other errors. */
  {
    const uint8_t *actor = NULL;
    size_t len = 0;
    int mode = -1;
    int64_t x = 0, y = 0, z = 0;
    CHECK_STATUS(aether_error_conflict_at(NULL, 0, &actor, &len, &mode, &x, &y, &z),
                 AETHER_INVALID_ARGUMENT);
    CHECK(aether_error_conflict_count(NULL) == 0);
    CHECK_STATUS(aether_append(s, STR("a"), 99, 0, STR(one), NULL, NULL, &err),
                 AETHER_INVALID_ARGUMENT);
    CHECK(aether_error_conflict_count(err) == 0);
    CHECK_STATUS(aether_error_conflict_at(err, 0, &actor, &len, &mode, &x, &y, &z),
                 AETHER_NOT_FOUND);
    aether_error_free(err);
    err = NULL;
    CHECK_STATUS(aether_append(s, STR("a"), AETHER_EXPECT_EXACT, 7, STR(one), NULL, NULL, &err),
                 AETHER_VERSION_CONFLICT);
    CHECK_STATUS(aether_error_conflict_at(err, 0, NULL, &len, &mode, &x, &y, &z),
                 AETHER_INVALID_ARGUMENT);
    CHECK_STATUS(aether_error_conflict_at(err, 0, &actor, &len, NULL, &x, &y, &z),
                 AETHER_INVALID_ARGUMENT);
    CHECK(mode == -1 && actor == NULL);
    aether_error_free(err);
    err = NULL;
  }

  check_store_unchanged(s);
  /* Still usable. */
  CHECK_OK(aether_append(s, STR("a"), AETHER_EXPECT_EXACT, 1, STR(one), &r, &last, NULL));
  CHECK(r.first_sequence == 2 && last == 2);
  close_backend(s);
}

int main(void) {
  int b;
  run_test(test_bad_sled_options);
  run_test(test_out_of_range_options);
  run_test(test_malformed_jetstream_urls);
  for (b = 0; b < BACKEND_COUNT; b++) {
    current_backend = (enum backend)b;
    printf("# backend: %s\n", backend_names[b]);
    run_test(test_null_pointers);
    run_test(test_invalid_utf8);
    run_test(test_malformed_json);
    run_test(test_deeply_nested_json);
    run_test(test_oversized_event);
    run_test(test_oversized_actor_id);
    run_test(test_out_of_range_numbers);
    run_test(test_append_bad_input);
  }
  return harness_finish();
}
