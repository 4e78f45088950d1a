/*
 * Persistence through the C interface: a sled store reopened (after close, and after
 * free without close) holds everything; a store held by another handle is AETHER_LOCKED.
 */
#include "harness.h"

static aether_store *open_sled(const char *dir, int durability, aether_status expected) {
  aether_sled_options o;
  aether_store *s = NULL;
  aether_error *err = NULL;
  aether_sled_options_default(&o);
  o.durability = durability;
  o.cache_capacity_bytes = 8u << 20;
  o.lock_timeout_ms = 50;
  CHECK_STATUS_ERR(aether_store_open_sled(dir, &o, &s, &err), expected, err);
  if (expected == AETHER_OK && s == NULL) {
    fprintf(stderr, "cannot open %s\n", dir);
    exit(EXIT_FAILURE);
  }
  return s;
}

static const char snapshot[] = "{\"actorId\":\"acct-1\",\"version\":3,\"state\":{\"balance\":30},"
                               "\"timestamp\":\"2024-01-02T03:04:05.123456789+02:00\"}";

/* Three actors: acct-1 v1..3 (one batch of two, one single), acct-2 v1, acct-3 v1..2. */
static void fill(aether_store *s, char events[6][512]) {
  char batch[1200];
  event_json(events[0], 512, "e1", "acct-1", 1);
  event_json(events[1], 512, "e2", "acct-1", 2);
  event_json(events[2], 512, "e3", "acct-1", 3);
  event_json(events[3], 512, "e4", "acct-2", 1);
  event_json(events[4], 512, "e5", "acct-3", 1);
  event_json(events[5], 512, "e6", "acct-3", 2);
  snprintf(batch, sizeof(batch), "[%s,%s]", events[0], events[1]);
  CHECK_OK(aether_save_events(s, STR(batch), NULL, NULL, NULL));
  CHECK_OK(aether_save_event(s, STR(events[3]), NULL, NULL, NULL));
  CHECK_OK(aether_save_event(s, STR(events[2]), NULL, NULL, NULL));
  snprintf(batch, sizeof(batch), "[%s,%s]", events[4], events[5]);
  CHECK_OK(aether_save_events(s, STR(batch), NULL, NULL, NULL));
  CHECK_OK(aether_save_snapshot(s, STR(snapshot), NULL));
}

static void check_contents(aether_store *s, char events[6][512]) {
  char want[4096];
  aether_bytes out = {NULL, 0};
  int64_t version = 0;
  uint64_t sequence = 0;

  CHECK_OK(aether_get_events(s, STR("acct-1"), 0, &out, NULL));
  snprintf(want, sizeof(want), "[%s,%s,%s]", events[0], events[1], events[2]);
  CHECK_BYTES_EQ(out, want);
  aether_bytes_free(&out);
  CHECK_OK(aether_get_events(s, STR("acct-3"), 2, &out, NULL));
  snprintf(want, sizeof(want), "[%s]", events[5]);
  CHECK_BYTES_EQ(out, want);
  aether_bytes_free(&out);
  CHECK_OK(aether_get_latest_version(s, STR("acct-2"), &version, NULL));
  CHECK(version == 1);
  CHECK_OK(aether_last_sequence(s, &sequence, NULL));
  CHECK(sequence == 6);
  CHECK_OK(aether_read_all(s, 3, 2, &out, NULL));
  snprintf(want, sizeof(want), "[{\"sequence\":3,\"event\":%s},{\"sequence\":4,\"event\":%s}]",
           events[3], events[2]);
  CHECK_BYTES_EQ(out, want);
  aether_bytes_free(&out);
  CHECK_OK(aether_get_latest_snapshot(s, STR("acct-1"), &out, NULL));
  CHECK_BYTES_EQ(out, snapshot);
  aether_bytes_free(&out);
}

static void reopen_finds_everything(int durability) {
  char *dir = make_temp_dir();
  char events[6][512], e[512];
  aether_store *s = open_sled(dir, durability, AETHER_OK);
  int64_t current = 0;
  uint64_t sequence = 0;

  fill(s, events);
  check_contents(s, events);
  CHECK_OK(aether_store_close(s, NULL));
  aether_store_free(s);

  s = open_sled(dir, durability, AETHER_OK);
  check_contents(s, events);
  /* Optimistic concurrency and the sequence carry on where they were. */
  CHECK_STATUS(aether_save_event(s, STR(event_json(e, sizeof(e), "x", "acct-1", 3)), &current,
                                 NULL, NULL),
               AETHER_VERSION_CONFLICT);
  CHECK(current == 3);
  CHECK_OK(aether_save_event(s, STR(event_json(e, sizeof(e), "e7", "acct-1", 4)), &current,
                             &sequence, NULL));
  CHECK(current == 4 && sequence == 7);
  /* Free without close also closes (and keeps everything). */
  aether_store_free(s);

  s = open_sled(dir, durability, AETHER_OK);
  CHECK_OK(aether_last_sequence(s, &sequence, NULL));
  CHECK(sequence == 7);
  aether_store_free(s);
  remove_temp_dir(dir);
}

static void test_reopen_durable(void) { reopen_finds_everything(AETHER_DURABILITY_DURABLE); }

static void test_reopen_buffered(void) { reopen_finds_everything(AETHER_DURABILITY_BUFFERED); }

static void test_reopen_in_the_other_mode(void) {
  char *dir = make_temp_dir();
  char events[6][512];
  aether_store *s = open_sled(dir, AETHER_DURABILITY_BUFFERED, AETHER_OK);
  fill(s, events);
  aether_store_free(s);
  s = open_sled(dir, AETHER_DURABILITY_DURABLE, AETHER_OK);
  check_contents(s, events);
  aether_store_free(s);
  remove_temp_dir(dir);
}

static void test_second_handle_is_locked(void) {
  char *dir = make_temp_dir();
  aether_store *a = open_sled(dir, AETHER_DURABILITY_DURABLE, AETHER_OK);
  aether_store *b = NULL;
  aether_error *err = NULL;
  aether_sled_options o;
  char e[512];

  aether_sled_options_default(&o);
  o.lock_timeout_ms = 50;
  CHECK_STATUS(aether_store_open_sled(dir, &o, &b, &err), AETHER_LOCKED);
  CHECK(b == NULL);
  CHECK(aether_error_code(err) == AETHER_LOCKED);
  CHECK(strstr(aether_error_message(err), "locked") != NULL);
  aether_error_free(err);

  CHECK_OK(aether_save_event(a, STR(event_json(e, sizeof(e), "e1", "x", 1)), NULL, NULL, NULL));
  /* Once closed, the store can be opened again at once, while the old handle lives on. */
  CHECK_OK(aether_store_close(a, NULL));
  b = open_sled(dir, AETHER_DURABILITY_DURABLE, AETHER_OK);
  CHECK_STATUS(aether_save_event(a, STR(event_json(e, sizeof(e), "e2", "x", 2)), NULL, NULL, NULL),
               AETHER_STORE_CLOSED);
  CHECK_OK(aether_save_event(b, STR(event_json(e, sizeof(e), "e2", "x", 2)), NULL, NULL, NULL));
  aether_store_free(a);
  aether_store_free(b);
  remove_temp_dir(dir);
}

int main(void) {
  run_test(test_reopen_durable);
  run_test(test_reopen_buffered);
  run_test(test_reopen_in_the_other_mode);
  run_test(test_second_handle_is_locked);
  return harness_finish();
}
