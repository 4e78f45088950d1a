/*
 * The whole C interface on every backend: saving (single and batch), conflicts and their
 * error detail, reads, read_all, snapshots, EventStored polling, metrics, flush, close.
 */
#include "backends.h"

#define EV(buf, id, actor, version) event_json((buf), sizeof(buf), (id), (actor), (version))

static void test_version(void) {
  char expected[64];
  CHECK(strcmp(aether_version(), AETHER_VERSION) == 0);
  snprintf(expected, sizeof(expected), "%d.%d.%d", AETHER_VERSION_MAJOR, AETHER_VERSION_MINOR,
           AETHER_VERSION_PATCH);
  CHECK(strcmp(expected, AETHER_VERSION) == 0);
}

static void test_status_str(void) {
  int code;
  for (code = AETHER_OK; code <= AETHER_UNSUPPORTED; code++) {
    const char *s = aether_status_str(code);
    CHECK(s != NULL && s[0] != '\0' && strcmp(s, "unknown status") != 0);
  }
  CHECK(strcmp(aether_status_str(AETHER_OK), "ok") == 0);
  CHECK(strcmp(aether_status_str(AETHER_VERSION_CONFLICT), "version conflict") == 0);
  CHECK(strcmp(aether_status_str(-1), "unknown status") == 0);
  CHECK(strcmp(aether_status_str(AETHER_UNSUPPORTED + 1), "unknown status") == 0);
  CHECK(strcmp(aether_status_str(1 << 30), "unknown status") == 0);
  /* The values are part of the ABI. */
  CHECK(AETHER_OK == 0 && AETHER_VERSION_CONFLICT == 1 && AETHER_INVALID_ARGUMENT == 2 &&
        AETHER_INVALID_EVENT == 3 && AETHER_NOT_FOUND == 4 && AETHER_POLL_TIMEOUT == 5 &&
        AETHER_CORRUPT == 6 && AETHER_DATA_LOSS == 7 && AETHER_LOCKED == 8 &&
        AETHER_STORAGE == 9 && AETHER_STORE_CLOSED == 10 && AETHER_TIMEOUT == 11 &&
        AETHER_UNAVAILABLE == 12 && AETHER_STALE_SNAPSHOT == 13 && AETHER_PANIC == 14 &&
        AETHER_UNSUPPORTED == 15);
}

static void test_save_and_read(void) {
  aether_store *s = open_backend(0);
  char e1[512], e2[512], e3[512], want[2048];
  int64_t version = -1;
  uint64_t sequence = 0;
  aether_bytes out = {NULL, 0};
  aether_error *err = NULL;

  EV(e1, "e1", "order-1", 1);
  EV(e2, "e2", "order-1", 2);
  EV(e3, "e3", "order-1", 3);
  CHECK_STATUS_ERR(aether_save_event(s, STR(e1), &version, &sequence, &err), AETHER_OK, err);
  CHECK(version == 1 && sequence == 1);
  CHECK_OK(aether_save_event(s, STR(e2), NULL, NULL, NULL));
  CHECK_OK(aether_save_event(s, STR(e3), &version, &sequence, NULL));
  CHECK(version == 3 && sequence == 3);

  CHECK_STATUS_ERR(aether_get_events(s, STR("order-1"), 0, &out, &err), AETHER_OK, err);
  snprintf(want, sizeof(want), "[%s,%s,%s]", e1, e2, e3);
  CHECK_BYTES_EQ(out, want);
  aether_bytes_free(&out);
  CHECK(out.ptr == NULL && out.len == 0);

  CHECK_OK(aether_get_events(s, STR("order-1"), 2, &out, NULL));
  snprintf(want, sizeof(want), "[%s,%s]", e2, e3);
  CHECK_BYTES_EQ(out, want);
  aether_bytes_free(&out);
  aether_bytes_free(&out); /* freeing a reset aether_bytes again is a no-op */

  CHECK_OK(aether_get_events(s, STR("order-1"), 4, &out, NULL));
  CHECK_BYTES_EQ(out, "[]");
  aether_bytes_free(&out);
  CHECK_OK(aether_get_events(s, STR("nobody"), 0, &out, NULL));
  CHECK_BYTES_EQ(out, "[]");
  aether_bytes_free(&out);

  CHECK_OK(aether_get_latest_version(s, STR("order-1"), &version, NULL));
  CHECK(version == 3);
  CHECK_OK(aether_get_latest_version(s, STR("nobody"), &version, NULL));
  CHECK(version == 0);
  CHECK_OK(aether_last_sequence(s, &sequence, NULL));
  CHECK(sequence == 3);

  CHECK_OK(aether_get_events_with_errors(s, STR("order-1"), 3, &out, NULL));
  snprintf(want, sizeof(want), "{\"events\":[%s],\"errors\":[]}", e3);
  CHECK_BYTES_EQ(out, want);
  aether_bytes_free(&out);

  /* Non-ASCII actor IDs are fine. */
  EV(e1, "e4", "k\xc3\xa4se", 1);
  CHECK_OK(aether_save_event(s, STR(e1), NULL, NULL, NULL));
  CHECK_OK(aether_get_latest_version(s, STR("k\xc3\xa4se"), &version, NULL));
  CHECK(version == 1);
  close_backend(s);
}

static void test_conflict(void) {
  aether_store *s = open_backend(0);
  char e[512];
  int64_t current = -1, attempted = -1;
  uint64_t sequence = 777;
  aether_error *err = NULL;
  const uint8_t *actor = NULL;
  size_t actor_len = 0;
  aether_metrics m;

  CHECK_OK(aether_save_event(s, STR(EV(e, "e1", "order-1", 1)), NULL, NULL, NULL));
  CHECK_STATUS(aether_save_event(s, STR(EV(e, "other", "order-1", 1)), &current, &sequence, &err),
               AETHER_VERSION_CONFLICT);
  CHECK(current == 1);
  CHECK(sequence == 777); /* untouched */
  CHECK(err != NULL);
  CHECK(aether_error_code(err) == AETHER_VERSION_CONFLICT);
  CHECK(strstr(aether_error_message(err), "version conflict") != NULL);
  CHECK(strstr(aether_error_message(err), "order-1") != NULL);
  CHECK_OK(aether_error_conflict(err, &actor, &actor_len, &attempted, &current));
  CHECK(actor_len == 7 && memcmp(actor, "order-1", 7) == 0);
  CHECK(attempted == 1 && current == 1);
  /* A conflict wrote nothing; NULL reads as "nothing written" too. */
  CHECK(aether_error_outcome(err) == AETHER_OUTCOME_NOT_APPLIED);
  CHECK(aether_error_outcome(NULL) == AETHER_OUTCOME_NOT_APPLIED);
  aether_error_free(err);
  err = NULL;

  /* Versions need not be contiguous, only strictly increasing. */
  CHECK_OK(aether_save_event(s, STR(EV(e, "e3", "order-1", 3)), &current, NULL, NULL));
  CHECK(current == 3);
  current = -1;
  CHECK_STATUS(aether_save_event(s, STR(EV(e, "e2", "order-1", 2)), &current, NULL, NULL),
               AETHER_VERSION_CONFLICT);
  CHECK(current == 3);
  CHECK_STATUS(aether_save_event(s, STR(EV(e, "e0", "order-1", 0)), &current, NULL, NULL),
               AETHER_VERSION_CONFLICT);
  CHECK_STATUS(aether_save_event(s, STR(EV(e, "en", "order-1", -5)), &current, NULL, NULL),
               AETHER_VERSION_CONFLICT);

  CHECK_OK(aether_store_metrics(s, &m, NULL));
  CHECK(m.events_saved == 2 && m.version_conflicts == 4);
  close_backend(s);
}

static void test_batch(void) {
  aether_store *s = open_backend(0);
  char e1[512], e2[512], e3[512], batch[2048], want[2048];
  int64_t current = -1;
  uint64_t last = 0;
  aether_bytes out = {NULL, 0};
  aether_error *err = NULL;

  EV(e1, "e1", "cart", 1);
  EV(e2, "e2", "cart", 2);
  snprintf(batch, sizeof(batch), "[%s,%s]", e1, e2);
  CHECK_STATUS_ERR(aether_save_events(s, STR(batch), &current, &last, &err), AETHER_OK, err);
  CHECK(current == 2 && last == 2);

  /* A conflict on the first event: nothing of the batch is written. */
  EV(e3, "e3", "cart", 3);
  snprintf(batch, sizeof(batch), "[%s,%s]", EV(e1, "x2", "cart", 2), e3);
  last = 99;
  CHECK_STATUS(aether_save_events(s, STR(batch), &current, &last, &err), AETHER_VERSION_CONFLICT);
  CHECK(current == 2 && last == 99);
  CHECK(aether_error_code(err) == AETHER_VERSION_CONFLICT);
  aether_error_free(err);
  err = NULL;
  CHECK_OK(aether_get_latest_version(s, STR("cart"), &current, NULL));
  CHECK(current == 2);

  /* Mixed actors, unordered versions, empty batch, not an array. */
  snprintf(batch, sizeof(batch), "[%s,%s]", e3, EV(e1, "o", "other", 4));
  CHECK_STATUS_ERR(aether_save_events(s, STR(batch), NULL, NULL, &err), AETHER_INVALID_EVENT, err);
  snprintf(batch, sizeof(batch), "[%s,%s]", e3, EV(e1, "e", "cart", 3));
  CHECK_STATUS(aether_save_events(s, STR(batch), NULL, NULL, NULL), AETHER_INVALID_EVENT);
  CHECK_STATUS(aether_save_events(s, STR("[]"), NULL, NULL, NULL), AETHER_INVALID_EVENT);
  CHECK_STATUS(aether_save_events(s, STR(e3), NULL, NULL, NULL), AETHER_INVALID_EVENT);
  CHECK_STATUS(aether_save_events(s, STR("[1]"), NULL, NULL, NULL), AETHER_INVALID_EVENT);

  EV(e1, "e1", "cart", 1);
  snprintf(want, sizeof(want), "[%s,%s]", e1, e2);
  CHECK_OK(aether_get_events(s, STR("cart"), 0, &out, NULL));
  CHECK_BYTES_EQ(out, want);
  aether_bytes_free(&out);
  CHECK_OK(aether_last_sequence(s, &last, NULL));
  CHECK(last == 2);
  close_backend(s);
}

static void test_read_all(void) {
  aether_store *s = open_backend(0);
  char a1[512], b1[512], a2[512], want[4096];
  aether_bytes out = {NULL, 0};

  CHECK_OK(aether_save_event(s, STR(EV(a1, "a1", "a", 1)), NULL, NULL, NULL));
  CHECK_OK(aether_save_event(s, STR(EV(b1, "b1", "b", 1)), NULL, NULL, NULL));
  CHECK_OK(aether_save_event(s, STR(EV(a2, "a2", "a", 2)), NULL, NULL, NULL));

  CHECK_OK(aether_read_all(s, 0, 100, &out, NULL));
  snprintf(want, sizeof(want),
           "[{\"sequence\":1,\"event\":%s},{\"sequence\":2,\"event\":%s},"
           "{\"sequence\":3,\"event\":%s}]",
           a1, b1, a2);
  CHECK_BYTES_EQ(out, want);
  aether_bytes_free(&out);

  CHECK_OK(aether_read_all(s, 2, 1, &out, NULL));
  snprintf(want, sizeof(want), "[{\"sequence\":2,\"event\":%s}]", b1);
  CHECK_BYTES_EQ(out, want);
  aether_bytes_free(&out);

  CHECK_OK(aether_read_all(s, 4, 10, &out, NULL));
  CHECK_BYTES_EQ(out, "[]");
  aether_bytes_free(&out);
  CHECK_OK(aether_read_all(s, 1, 0, &out, NULL));
  CHECK_BYTES_EQ(out, "[]");
  aether_bytes_free(&out);
  CHECK_OK(aether_read_all(s, UINT64_MAX, SIZE_MAX, &out, NULL));
  CHECK_BYTES_EQ(out, "[]");
  aether_bytes_free(&out);
  close_backend(s);
}

static void test_snapshots(void) {
  aether_store *s = open_backend(0);
  static const char snap2[] = "{\"actorId\":\"order-1\",\"version\":2,\"state\":{\"total\":42},"
                              "\"timestamp\":\"2024-01-02T03:04:05Z\"}";
  static const char snap2b[] = "{\"actorId\":\"order-1\",\"version\":2,\"state\":{\"total\":43},"
                               "\"timestamp\":\"2024-01-02T03:04:06Z\"}";
  static const char snap1[] = "{\"actorId\":\"order-1\",\"version\":1,\"state\":null,"
                              "\"timestamp\":\"2024-01-02T03:04:05Z\"}";
  uint8_t marker = 0;
  aether_bytes out = {&marker, 12345};
  aether_error *err = NULL;
  int64_t attempted = 0, current = 0;
  const uint8_t *actor = NULL;
  size_t actor_len = 0;
  aether_metrics m;

  CHECK_STATUS_ERR(aether_get_latest_snapshot(s, STR("order-1"), &out, &err), AETHER_NOT_FOUND,
                   err);
  CHECK(out.ptr == &marker && out.len == 12345); /* untouched */

  CHECK_STATUS_ERR(aether_save_snapshot(s, STR(snap2), &err), AETHER_OK, err);
  CHECK_OK(aether_get_latest_snapshot(s, STR("order-1"), &out, NULL));
  CHECK_BYTES_EQ(out, snap2);
  aether_bytes_free(&out);

  CHECK_STATUS(aether_save_snapshot(s, STR(snap1), &err), AETHER_STALE_SNAPSHOT);
  CHECK(aether_error_code(err) == AETHER_STALE_SNAPSHOT);
  CHECK_OK(aether_error_conflict(err, &actor, &actor_len, &attempted, &current));
  CHECK(actor_len == 7 && memcmp(actor, "order-1", 7) == 0 && attempted == 1 && current == 2);
  aether_error_free(err);
  err = NULL;

  /* The same version replaces. */
  CHECK_OK(aether_save_snapshot(s, STR(snap2b), NULL));
  CHECK_OK(aether_get_latest_snapshot(s, STR("order-1"), &out, NULL));
  CHECK_BYTES_EQ(out, snap2b);
  aether_bytes_free(&out);

  CHECK_STATUS(aether_save_snapshot(s, STR("{\"actorId\":\"\",\"version\":1,\"state\":null,"
                                           "\"timestamp\":\"2024-01-02T03:04:05Z\"}"),
                                    NULL),
               AETHER_INVALID_EVENT);
  CHECK_STATUS(aether_save_snapshot(s, STR("{\"actorId\":\"x\",\"version\":1}"), NULL),
               AETHER_INVALID_EVENT);

  CHECK_OK(aether_store_metrics(s, &m, NULL));
  CHECK(m.snapshots_saved == 2);
  close_backend(s);
}

static void check_notification(const aether_event_stored *n, const char *event_id,
                               const char *actor_id, int64_t version, uint64_t sequence) {
  CHECK(n->event_id_len == strlen(event_id) && memcmp(n->event_id, event_id, n->event_id_len) == 0);
  CHECK(n->actor_id_len == strlen(actor_id) && memcmp(n->actor_id, actor_id, n->actor_id_len) == 0);
  CHECK(n->version == version);
  CHECK(n->sequence == sequence);
  CHECK(n->timestamp_unix_nanos > INT64_C(1600000000000000000));
}

static void test_poll(void) {
  aether_store *s = open_backend(0);
  char e[512], id[32];
  aether_event_stored n = {0}, batch[3] = {{0}};
  aether_error *err = NULL;
  size_t count = 99;
  int i;

  CHECK_OK(aether_save_event(s, STR(EV(e, "e1", "a", 1)), NULL, NULL, NULL));
  CHECK_OK(aether_save_event(s, STR(EV(e, "e2", "b", 1)), NULL, NULL, NULL));
  CHECK_OK(aether_save_event(s, STR(EV(e, "e3", "a", 2)), NULL, NULL, NULL));

  CHECK_OK(aether_poll_event_stored(s, 0, &n, NULL));
  check_notification(&n, "e1", "a", 1, 1);
  aether_event_stored_clear(&n);
  CHECK(n.event_id == NULL && n.event_id_len == 0 && n.actor_id == NULL && n.sequence == 0);
  aether_event_stored_clear(&n); /* clearing a cleared struct is a no-op */
  CHECK_OK(aether_poll_event_stored(s, 1000, &n, NULL));
  check_notification(&n, "e2", "b", 1, 2);
  aether_event_stored_clear(&n);
  CHECK_OK(aether_poll_event_stored(s, 0, &n, NULL));
  check_notification(&n, "e3", "a", 2, 3);
  aether_event_stored_clear(&n);

  n.version = 4242;
  CHECK_STATUS_ERR(aether_poll_event_stored(s, 0, &n, &err), AETHER_POLL_TIMEOUT, err);
  CHECK_STATUS(aether_poll_event_stored(s, 20, &n, NULL), AETHER_POLL_TIMEOUT);
  CHECK(n.version == 4242 && n.event_id == NULL); /* untouched */

  /* A batch gives what is waiting, up to its capacity. */
  for (i = 4; i <= 8; i++) {
    snprintf(id, sizeof(id), "e%d", i);
    CHECK_OK(aether_save_event(s, STR(EV(e, id, "a", i)), NULL, NULL, NULL));
  }
  CHECK_OK(aether_poll_event_stored_batch(s, 0, batch, 3, &count, NULL));
  CHECK(count == 3);
  check_notification(&batch[0], "e4", "a", 4, 4);
  check_notification(&batch[2], "e6", "a", 6, 6);
  aether_event_stored_clear_batch(batch, count);
  CHECK(batch[1].event_id == NULL && batch[2].actor_id == NULL);
  CHECK_OK(aether_poll_event_stored_batch(s, 100, batch, 3, &count, NULL));
  CHECK(count == 2);
  check_notification(&batch[1], "e8", "a", 8, 8);
  aether_event_stored_clear_batch(batch, count);
  count = 77;
  CHECK_STATUS(aether_poll_event_stored_batch(s, 10, batch, 3, &count, NULL), AETHER_POLL_TIMEOUT);
  CHECK(count == 77);
  close_backend(s);
}

/* Polling into a struct that still holds a notification releases its strings first, so a
 * loop may reuse one struct and clear it once; ASan and valgrind report the old leak. */
static void test_poll_reuses_a_filled_struct(void) {
  aether_store *s = open_backend(0);
  char e[512], id[32];
  aether_event_stored n = {0}, batch[2] = {{0}};
  size_t count = 0;
  int i;

  for (i = 1; i <= 7; i++) {
    snprintf(id, sizeof(id), "e%d", i);
    CHECK_OK(aether_save_event(s, STR(EV(e, id, "a", i)), NULL, NULL, NULL));
  }
  for (i = 1; i <= 3; i++) {
    CHECK_OK(aether_poll_event_stored(s, 0, &n, NULL));
    snprintf(id, sizeof(id), "e%d", i);
    check_notification(&n, id, "a", i, (uint64_t)i);
  }
  CHECK_OK(aether_poll_event_stored_batch(s, 0, batch, 2, &count, NULL));
  CHECK(count == 2);
  check_notification(&batch[1], "e5", "a", 5, 5);
  CHECK_OK(aether_poll_event_stored_batch(s, 0, batch, 2, &count, NULL));
  CHECK(count == 2);
  check_notification(&batch[0], "e6", "a", 6, 6);
  check_notification(&batch[1], "e7", "a", 7, 7);
  /* A failed poll leaves the filled struct as it was. */
  CHECK_STATUS(aether_poll_event_stored(s, 0, &n, NULL), AETHER_POLL_TIMEOUT);
  check_notification(&n, "e3", "a", 3, 3);
  aether_event_stored_clear(&n);
  aether_event_stored_clear_batch(batch, 2);
  close_backend(s);
}

static void test_dropped_notifications_are_counted(void) {
  aether_store *s = open_backend(2);
  char e[512], id[32];
  aether_metrics m;
  aether_event_stored n = {0};
  int i;

  for (i = 1; i <= 3; i++) {
    snprintf(id, sizeof(id), "e%d", i);
    CHECK_OK(aether_save_event(s, STR(EV(e, id, "a", i)), NULL, NULL, NULL));
  }
  CHECK_OK(aether_store_metrics(s, &m, NULL));
  /* Whether `published` counts the dropped notification is the core's business; that
   * the drop is counted, and nothing else is lost, is ours. */
  CHECK(m.events_saved == 3 && m.event_stored_dropped == 1);
  CHECK(m.event_stored_published >= 2 && m.event_stored_published <= 3);
  CHECK(m.version_conflicts == 0 && m.snapshots_saved == 0 && m.replay_errors == 0);
  CHECK_OK(aether_poll_event_stored(s, 0, &n, NULL));
  CHECK(n.sequence == 1);
  aether_event_stored_clear(&n);
  CHECK_OK(aether_poll_event_stored(s, 0, &n, NULL));
  CHECK(n.sequence == 2);
  aether_event_stored_clear(&n);
  CHECK_STATUS(aether_poll_event_stored(s, 0, &n, NULL), AETHER_POLL_TIMEOUT);
  close_backend(s);
}

static void test_close(void) {
  aether_store *s = open_backend(0);
  char e[512];
  int64_t version = 5;
  uint64_t sequence = 6;
  size_t count = 7;
  uint8_t marker = 0;
  aether_bytes out = {&marker, 1};
  aether_event_stored n = {0}, batch[2] = {{0}};
  aether_metrics m;
  aether_error *err = NULL;

  memset(&n, 0, sizeof(n));
  memset(&m, 0xab, sizeof(m));
  CHECK_OK(aether_save_event(s, STR(EV(e, "e1", "a", 1)), NULL, NULL, NULL));
  CHECK_OK(aether_store_flush(s, NULL));
  CHECK_STATUS_ERR(aether_store_close(s, &err), AETHER_OK, err);
  CHECK_STATUS_ERR(aether_store_close(s, &err), AETHER_OK, err); /* idempotent */

  CHECK_STATUS(aether_save_event(s, STR(EV(e, "e2", "a", 2)), &version, &sequence, &err),
               AETHER_STORE_CLOSED);
  CHECK(aether_error_code(err) == AETHER_STORE_CLOSED);
  aether_error_free(err);
  CHECK_STATUS(aether_save_events(s, STR("[]"), &version, &sequence, NULL), AETHER_STORE_CLOSED);
  CHECK_STATUS(aether_get_events(s, STR("a"), 0, &out, NULL), AETHER_STORE_CLOSED);
  CHECK_STATUS(aether_get_events_with_errors(s, STR("a"), 0, &out, NULL), AETHER_STORE_CLOSED);
  CHECK_STATUS(aether_get_latest_version(s, STR("a"), &version, NULL), AETHER_STORE_CLOSED);
  CHECK_STATUS(aether_read_all(s, 0, 10, &out, NULL), AETHER_STORE_CLOSED);
  CHECK_STATUS(aether_last_sequence(s, &sequence, NULL), AETHER_STORE_CLOSED);
  CHECK_STATUS(aether_save_snapshot(s, STR("{\"actorId\":\"a\",\"version\":1,\"state\":null,"
                                           "\"timestamp\":\"2024-01-02T03:04:05Z\"}"),
                                    NULL),
               AETHER_STORE_CLOSED);
  CHECK_STATUS(aether_get_latest_snapshot(s, STR("a"), &out, NULL), AETHER_STORE_CLOSED);
  CHECK_STATUS(aether_poll_event_stored(s, 0, &n, NULL), AETHER_STORE_CLOSED);
  CHECK_STATUS(aether_poll_event_stored_batch(s, 0, batch, 2, &count, NULL), AETHER_STORE_CLOSED);
  CHECK_STATUS(aether_store_metrics(s, &m, NULL), AETHER_STORE_CLOSED);
  CHECK_STATUS(aether_store_flush(s, NULL), AETHER_STORE_CLOSED);
  CHECK(version == 5 && sequence == 6 && count == 7 && out.ptr == &marker && out.len == 1);
  CHECK(n.event_id == NULL && m.events_saved == UINT64_C(0xabababababababab));
  aether_store_free(s);
  remove_temp_dir(current_dir);
  current_dir = NULL;
}

static void test_free_functions_accept_null(void) {
  aether_bytes empty = {NULL, 0};
  aether_event_stored zero;
  memset(&zero, 0, sizeof(zero));
  aether_store_free(NULL);
  aether_error_free(NULL);
  aether_bytes_free(NULL);
  aether_bytes_free(&empty);
  aether_event_stored_clear(NULL);
  aether_event_stored_clear(&zero);
  aether_event_stored_clear_batch(NULL, 5);
  aether_event_stored_clear_batch(&zero, 1);
  aether_event_stored_clear_batch(&zero, 0);
  aether_sled_options_default(NULL);
  CHECK(empty.ptr == NULL && zero.event_id == NULL);
}

static void test_sled_options_default(void) {
  aether_sled_options o;
  memset(&o, 0xff, sizeof(o));
  aether_sled_options_default(&o);
  CHECK(o.durability == AETHER_DURABILITY_DURABLE && o.event_stored_capacity == 0 &&
        o.cache_capacity_bytes == 0 && o.lock_timeout_ms == 0);
}

int main(void) {
  int b;
  run_test(test_version);
  run_test(test_status_str);
  run_test(test_free_functions_accept_null);
  run_test(test_sled_options_default);
  for (b = 0; b < BACKEND_COUNT; b++) {
    current_backend = (enum backend)b;
    printf("# backend: %s\n", backend_names[b]);
    run_test(test_save_and_read);
    run_test(test_conflict);
    run_test(test_batch);
    run_test(test_read_all);
    run_test(test_snapshots);
    run_test(test_poll);
    run_test(test_poll_reuses_a_filled_struct);
    run_test(test_dropped_notifications_are_counted);
    run_test(test_close);
  }
  return harness_finish();
}
