/*
 * Appends beyond the seed's rule through the C ABI, on every backend: expected-state
 * modes and the failed conditions an aether_error carries, automatic versions, idempotent
 * retries (across a reopen for sled), commits across actors with condition-only entries,
 * bounded and backward reads, filtered read_all, and snapshot history with retention.
 * Bad arguments to these functions are in test_bad_input.c.
 */
#include "backends.h"

#define EV(buf, id, actor, version) event_json((buf), sizeof(buf), (id), (actor), (version))

/* An event of `type` (otherwise as event_json). Returns buf. */
static char *typed_event(char *buf, size_t cap, const char *id, const char *type,
                         const char *actor, int64_t version) {
  snprintf(buf, cap,
           "{\"id\":\"%s\",\"eventType\":\"%s\",\"actorId\":\"%s\",\"version\":%lld,"
           "\"data\":{\"n\":%lld},\"timestamp\":\"2024-01-02T03:04:05Z\"}",
           id, type, actor, (long long)version, (long long)version);
  return buf;
}

/* "[e]" and "[e1,e2]" into buf. Returns buf. */
static char *array1(char *buf, size_t cap, const char *e) {
  snprintf(buf, cap, "[%s]", e);
  return buf;
}
static char *array2(char *buf, size_t cap, const char *e1, const char *e2) {
  snprintf(buf, cap, "[%s,%s]", e1, e2);
  return buf;
}

/* The integers following each `"key":` in `b`, in order; returns how many (at most
 * cap are stored). */
static size_t json_ints(const aether_bytes *b, const char *key, int64_t *out, size_t cap) {
  char needle[64];
  char *text = (char *)malloc(b->len + 1);
  const char *p;
  size_t n = 0;
  if (text == NULL) {
    abort();
  }
  if (b->len > 0) {
    memcpy(text, b->ptr, b->len);
  }
  text[b->len] = '\0';
  snprintf(needle, sizeof(needle), "\"%s\":", key);
  for (p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle)) {
    if (n < cap) {
      out[n] = strtoll(p + strlen(needle), NULL, 10);
    }
    n++;
  }
  free(text);
  return n;
}

/* Check that `got` (n values) equals the `want_n` values of `want`. */
#define CHECK_INTS(got, n, ...)                                                      \
  do {                                                                               \
    const int64_t want_[] = {__VA_ARGS__};                                           \
    size_t i_, want_n_ = sizeof(want_) / sizeof(want_[0]);                           \
    int same_ = (n) == want_n_;                                                      \
    for (i_ = 0; same_ && i_ < want_n_; i_++) {                                      \
      same_ = (got)[i_] == want_[i_];                                                \
    }                                                                                \
    if (!same_) {                                                                    \
      fprintf(stderr, "%s:%d: got %u values:", __FILE__, __LINE__, (unsigned)(n));   \
      for (i_ = 0; i_ < (n) && i_ < 64; i_++) {                                      \
        fprintf(stderr, " %lld", (long long)(got)[i_]);                              \
      }                                                                              \
      fprintf(stderr, "; want %s\n", #__VA_ARGS__);                                  \
      harness_current_failed = 1;                                                    \
    }                                                                                \
  } while (0)

/* Check failed condition `index` of `err`. */
static void check_conflict_at(const aether_error *err, size_t index, const char *actor,
                              int mode, int64_t expected_version, int64_t attempted,
                              int64_t current) {
  const uint8_t *a = NULL;
  size_t a_len = 0;
  int m = -1;
  int64_t e = -1, at = -1, cur = -1;
  aether_status st = aether_error_conflict_at(err, index, &a, &a_len, &m, &e, &at, &cur);
  if (st != AETHER_OK || a_len != strlen(actor) || memcmp(a, actor, a_len) != 0 || m != mode ||
      e != expected_version || at != attempted || cur != current) {
    fprintf(stderr,
            "conflict %u: status %d, actor %.*s mode %d expected %lld attempted %lld current "
            "%lld; want %s %d %lld %lld %lld\n",
            (unsigned)index, (int)st, (int)a_len, a != NULL ? (const char *)a : "", m,
            (long long)e, (long long)at, (long long)cur, actor, mode,
            (long long)expected_version, (long long)attempted, (long long)current);
    harness_current_failed = 1;
  }
}

/* Expect `call` to be AETHER_VERSION_CONFLICT with exactly one failed condition as
 * given; frees err. */
#define CHECK_ONE_CONFLICT(call, err, actor, mode, expected_version, attempted, current) \
  do {                                                                                 \
    CHECK_STATUS(call, AETHER_VERSION_CONFLICT);                                       \
    CHECK((err) != NULL && aether_error_code(err) == AETHER_VERSION_CONFLICT);         \
    CHECK(aether_error_conflict_count(err) == 1);                                      \
    check_conflict_at((err), 0, (actor), (mode), (expected_version), (attempted),      \
                      (current));                                                      \
    CHECK(aether_error_outcome(err) == AETHER_OUTCOME_NOT_APPLIED);                    \
    aether_error_free(err);                                                            \
    (err) = NULL;                                                                      \
  } while (0)

static int64_t latest(aether_store *s, const char *actor) {
  int64_t v = -1;
  CHECK_OK(aether_get_latest_version(s, STR(actor), &v, NULL));
  return v;
}

static uint64_t last_seq(aether_store *s) {
  uint64_t q = 0;
  CHECK_OK(aether_last_sequence(s, &q, NULL));
  return q;
}

/* How many EventStored notifications are waiting (drains them). */
static size_t drain(aether_store *s) {
  aether_event_stored n = {0};
  size_t count = 0;
  while (aether_poll_event_stored(s, 0, &n, NULL) == AETHER_OK) {
    count++;
  }
  aether_event_stored_clear(&n);
  return count;
}

/* The versions of the actor's events (get_events from 0). */
static size_t versions_of(aether_store *s, const char *actor, int64_t *out, size_t cap) {
  aether_bytes b = {NULL, 0};
  size_t n;
  CHECK_OK(aether_get_events(s, STR(actor), 0, &b, NULL));
  n = json_ints(&b, "version", out, cap);
  aether_bytes_free(&b);
  return n;
}

static aether_commit_entry entry(const char *actor, int mode, int64_t expected_version,
                                 const char *events_json) {
  aether_commit_entry e;
  e.actor_id = (const uint8_t *)actor;
  e.actor_id_len = strlen(actor);
  e.expected_mode = mode;
  e.expected_version = expected_version;
  e.events_json = (const uint8_t *)events_json;
  e.events_json_len = events_json != NULL ? strlen(events_json) : 0;
  return e;
}

static void test_expected_modes(void) {
  aether_store *s = open_backend(0);
  char e1[512], e2[512], e[512], batch[1200];
  aether_error *err = NULL;
  aether_commit_result r = {7, 77, 777};
  int64_t last = -9, got[16];
  const uint8_t *actor = NULL;
  size_t actor_len = 0, n;
  int64_t attempted = 0, current = 0;
  aether_metrics m;

  EV(e1, "a-1", "a", 1);
  EV(e2, "a-2", "a", 2);
  /* Conditions that fail on a new actor: nothing written, outputs untouched. */
  CHECK_ONE_CONFLICT(aether_append(s, STR("a"), AETHER_EXPECT_STREAM_EXISTS, 0,
                                   STR(array1(batch, sizeof(batch), e1)), &r, &last, &err),
                     err, "a", AETHER_EXPECT_STREAM_EXISTS, 0, 1, 0);
  CHECK_ONE_CONFLICT(aether_append(s, STR("a"), AETHER_EXPECT_EXACT, 1, STR(batch), &r, &last,
                                   &err),
                     err, "a", AETHER_EXPECT_EXACT, 1, 1, 0);
  CHECK(r.already_appended == 7 && r.first_sequence == 77 && r.last_sequence == 777);
  CHECK(last == -9);
  CHECK(last_seq(s) == 0 && latest(s, "a") == 0);

  CHECK_STATUS_ERR(aether_append(s, STR("a"), AETHER_EXPECT_NO_STREAM, 0,
                                 STR(array2(batch, sizeof(batch), e1, e2)), &r, &last, &err),
                   AETHER_OK, err);
  CHECK(r.already_appended == 0 && r.first_sequence == 1 && r.last_sequence == 2);
  CHECK(last == 2);

  CHECK_ONE_CONFLICT(aether_append(s, STR("a"), AETHER_EXPECT_NO_STREAM, 0,
                                   STR(array1(batch, sizeof(batch), EV(e, "a-3", "a", 3))), &r,
                                   &last, &err),
                     err, "a", AETHER_EXPECT_NO_STREAM, 0, 3, 2);
  CHECK_ONE_CONFLICT(aether_append(s, STR("a"), AETHER_EXPECT_EXACT, 1, STR(batch), &r, &last,
                                   &err),
                     err, "a", AETHER_EXPECT_EXACT, 1, 3, 2);
  /* Whatever the mode, explicit versions must pass the latest (new IDs: no retry). */
  CHECK_ONE_CONFLICT(aether_append(s, STR("a"), AETHER_EXPECT_ANY, 0,
                                   STR(array1(batch, sizeof(batch), EV(e, "fresh-2", "a", 2))),
                                   &r, &last, &err),
                     err, "a", AETHER_EXPECT_ANY, 0, 2, 2);
  CHECK_ONE_CONFLICT(aether_append(s, STR("a"), AETHER_EXPECT_INCREASING, 0,
                                   STR(array1(batch, sizeof(batch), EV(e, "fresh-1", "a", 1))),
                                   &r, &last, &err),
                     err, "a", AETHER_EXPECT_INCREASING, 0, 1, 2);
  /* The one-conflict accessor reports the first failed condition too. */
  CHECK_STATUS(aether_append(s, STR("a"), AETHER_EXPECT_EXACT, 5, STR(batch), NULL, NULL, &err),
               AETHER_VERSION_CONFLICT);
  CHECK_OK(aether_error_conflict(err, &actor, &actor_len, &attempted, &current));
  CHECK(actor_len == 1 && actor[0] == 'a' && attempted == 1 && current == 2);
  CHECK(strstr(aether_error_message(err), "version 5") != NULL);
  aether_error_free(err);
  err = NULL;
  CHECK(r.first_sequence == 1 && r.last_sequence == 2 && last == 2);
  CHECK(last_seq(s) == 2);
  CHECK(drain(s) == 2); /* no EventStored after a failed append */

  /* Each mode, met. */
  CHECK_OK(aether_append(s, STR("a"), AETHER_EXPECT_EXACT, 2,
                         STR(array1(batch, sizeof(batch), EV(e, "a-3", "a", 3))), &r, &last,
                         NULL));
  CHECK(last == 3 && r.first_sequence == 3);
  CHECK_OK(aether_append(s, STR("a"), AETHER_EXPECT_STREAM_EXISTS, 0,
                         STR(array1(batch, sizeof(batch), EV(e, "a-5", "a", 5))), NULL, &last,
                         NULL));
  CHECK(last == 5);
  CHECK_OK(aether_append(s, STR("a"), AETHER_EXPECT_ANY, 0,
                         STR(array1(batch, sizeof(batch), EV(e, "a-6", "a", 6))), &r, NULL,
                         NULL));
  CHECK(r.last_sequence == 5);
  CHECK_OK(aether_append(s, STR("a"), AETHER_EXPECT_INCREASING, 0,
                         STR(array1(batch, sizeof(batch), EV(e, "a-9", "a", 9))), &r, &last,
                         NULL));
  CHECK(r.first_sequence == 6 && r.last_sequence == 6 && last == 9);
  n = versions_of(s, "a", got, 16);
  CHECK_INTS(got, n, 1, 2, 3, 5, 6, 9);
  /* Exact 0 is the condition of no stream. */
  CHECK_OK(aether_append(s, STR("b"), AETHER_EXPECT_EXACT, 0,
                         STR(array1(batch, sizeof(batch), EV(e, "b-1", "b", 1))), NULL, NULL,
                         NULL));
  CHECK_ONE_CONFLICT(aether_append(s, STR("b"), AETHER_EXPECT_EXACT, 0,
                                   STR(array1(batch, sizeof(batch), EV(e, "b-2", "b", 2))),
                                   NULL, NULL, &err),
                     err, "b", AETHER_EXPECT_EXACT, 0, 2, 1);
  CHECK_OK(aether_store_metrics(s, &m, NULL));
  CHECK(m.version_conflicts == 8 && m.events_saved == 7);
  close_backend(s);
}

static void test_automatic_versions(void) {
  aether_store *s = open_backend(0);
  char e[512], z1[512], z2[512], z3[512], batch[2048], want[1024];
  aether_commit_result r = {0, 0, 0};
  aether_bytes out = {NULL, 0};
  aether_error *err = NULL;
  int64_t last = -1, got[16], lasts[3] = {-1, -1, -1};
  size_t n;
  aether_commit_entry entries[3];
  aether_event_stored notes[8];
  size_t count = 0;

  memset(notes, 0, sizeof(notes));
  CHECK_OK(aether_save_event(s, STR(EV(e, "a-4", "a", 4)), NULL, NULL, NULL));
  EV(z1, "auto-1", "a", 0);
  EV(z2, "auto-2", "a", 0);
  EV(z3, "auto-3", "a", 0);
  snprintf(batch, sizeof(batch), "[%s,%s,%s]", z1, z2, z3);
  CHECK_STATUS_ERR(aether_append(s, STR("a"), AETHER_EXPECT_ANY, 0, STR(batch), &r, &last, &err),
                   AETHER_OK, err);
  CHECK(r.already_appended == 0 && r.first_sequence == 2 && r.last_sequence == 4 && last == 7);
  n = versions_of(s, "a", got, 16);
  CHECK_INTS(got, n, 4, 5, 6, 7);
  /* The stored event carries its assigned version, nothing else changed. */
  CHECK_OK(aether_get_events_range(s, STR("a"), 5, 5, SIZE_MAX, AETHER_FORWARD, &out, NULL));
  snprintf(want, sizeof(want),
           "[{\"id\":\"auto-1\",\"eventType\":\"OrderPlaced\",\"actorId\":\"a\",\"version\":5,"
           "\"data\":{\"n\":0},\"timestamp\":\"2024-01-02T03:04:05Z\"}]");
  CHECK_BYTES_EQ(out, want);
  aether_bytes_free(&out);
  /* The notifications carry the assigned versions. */
  CHECK_OK(aether_poll_event_stored_batch(s, 0, notes, 8, &count, NULL));
  CHECK(count == 4);
  if (count == 4) {
    CHECK(notes[1].version == 5 && notes[1].sequence == 2);
    CHECK(notes[3].version == 7 && notes[3].sequence == 4);
  }
  aether_event_stored_clear_batch(notes, count);

  /* A new actor starts at 1; in a commit, each entry gets its own actor's next
   * versions, and last_versions_out has one value per entry. */
  EV(z1, "new-auto", "new", 0);
  EV(z2, "c-auto", "c", 0);
  CHECK_OK(aether_save_event(s, STR(EV(e, "c-10", "c", 10)), NULL, NULL, NULL));
  entries[0] = entry("new", AETHER_EXPECT_NO_STREAM, 0, array1(batch, sizeof(batch), z1));
  entries[1] = entry("c", AETHER_EXPECT_EXACT, 10, array1(batch + 1024, 1024, z2));
  entries[2] = entry("a", AETHER_EXPECT_EXACT, 7, NULL);
  CHECK_STATUS_ERR(aether_commit(s, entries, 3, &r, lasts, &err), AETHER_OK, err);
  CHECK(lasts[0] == 1 && lasts[1] == 11 && lasts[2] == 0);
  CHECK(r.first_sequence == 6 && r.last_sequence == 7);
  CHECK(latest(s, "new") == 1 && latest(s, "c") == 11 && latest(s, "a") == 7);
  /* An automatic append under an expectation that no longer holds conflicts, naming
   * attempted version 0. */
  CHECK_ONE_CONFLICT(aether_append(s, STR("new"), AETHER_EXPECT_EXACT, 0,
                                   STR(array1(batch, sizeof(batch), EV(e, "another", "new", 0))),
                                   NULL, NULL, &err),
                     err, "new", AETHER_EXPECT_EXACT, 0, 0, 1);
  close_backend(s);
}

/* Reopen the current backend's store (sled: the same directory); a memory store cannot
 * be reopened, so it is returned as it is. */
static aether_store *reopen(aether_store *s) {
  aether_sled_options options;
  aether_store *again = NULL;
  if (current_backend == BACKEND_MEMORY) {
    return s;
  }
  CHECK_OK(aether_store_close(s, NULL));
  aether_store_free(s);
  aether_sled_options_default(&options);
  options.durability = current_backend == BACKEND_SLED_BUFFERED ? AETHER_DURABILITY_BUFFERED
                                                                : AETHER_DURABILITY_DURABLE;
  options.cache_capacity_bytes = 8u << 20;
  CHECK_OK(aether_store_open_sled(current_dir, &options, &again, NULL));
  if (again == NULL) {
    exit(EXIT_FAILURE);
  }
  return again;
}

static void test_idempotent_retry(void) {
  aether_store *s = open_backend(0);
  char e1[512], e2[512], e[512], batch[1200], x1[512], y1[512], xa[600], ya[600], q[1200];
  aether_commit_result first = {0, 0, 0}, r = {0, 0, 0};
  aether_commit_entry both[2];
  aether_error *err = NULL;
  int64_t last = -1, lasts[2] = {-1, -1};
  int64_t v = 0;

  array2(batch, sizeof(batch), EV(e1, "a-1", "a", 1), EV(e2, "a-2", "a", 2));
  CHECK_OK(aether_append(s, STR("a"), AETHER_EXPECT_NO_STREAM, 0, STR(batch), &first, NULL,
                         NULL));
  CHECK_OK(aether_save_event(s, STR(EV(e, "z-1", "z", 1)), NULL, NULL, NULL));
  CHECK(drain(s) == 3);

  /* The same events again: success, marked, the stored sequences, nothing written. */
  CHECK_STATUS_ERR(aether_append(s, STR("a"), AETHER_EXPECT_NO_STREAM, 0, STR(batch), &r, &last,
                                 &err),
                   AETHER_OK, err);
  CHECK(r.already_appended == 1);
  CHECK(r.first_sequence == first.first_sequence && r.last_sequence == first.last_sequence);
  CHECK(last == 2);
  /* A retry of part of it (the last event) too. */
  CHECK_OK(aether_append(s, STR("a"), AETHER_EXPECT_ANY, 0, STR(array1(q, sizeof(q), e2)), &r,
                         &last, NULL));
  CHECK(r.already_appended == 1 && r.first_sequence == 2 && r.last_sequence == 2 && last == 2);
  /* And of its first event: last_version_out is that event's version, below the actor's. */
  CHECK_OK(aether_append(s, STR("a"), AETHER_EXPECT_INCREASING, 0,
                         STR(array1(q, sizeof(q), e1)), &r, &last, NULL));
  CHECK(r.already_appended == 1 && r.first_sequence == 1 && r.last_sequence == 1 && last == 1);
  CHECK(last_seq(s) == 3);
  CHECK(drain(s) == 0); /* no EventStored for a retry */

  /* The same version with another ID is a conflict. */
  CHECK_ONE_CONFLICT(aether_append(s, STR("a"), AETHER_EXPECT_ANY, 0,
                                   STR(array1(q, sizeof(q), EV(e, "someone-else", "a", 2))), &r,
                                   &last, &err),
                     err, "a", AETHER_EXPECT_ANY, 0, 2, 2);
  /* A retry that also carries a new event is not a retry. */
  CHECK_ONE_CONFLICT(aether_append(s, STR("a"), AETHER_EXPECT_ANY, 0,
                                   STR(array2(q, sizeof(q), e2, EV(e, "a-3", "a", 3))), &r,
                                   &last, &err),
                     err, "a", AETHER_EXPECT_ANY, 0, 2, 2);
  /* The seed's aether_save_event keeps its rule: a repeated event conflicts. */
  CHECK_STATUS(aether_save_event(s, STR(e2), &v, NULL, NULL), AETHER_VERSION_CONFLICT);
  CHECK(v == 2);

  /* Automatic versions are recognised under an exact expectation. */
  array2(q, sizeof(q), EV(e1, "q-first", "q", 0), EV(e2, "q-second", "q", 0));
  CHECK_OK(aether_append(s, STR("q"), AETHER_EXPECT_EXACT, 0, STR(q), &first, NULL, NULL));
  CHECK_OK(aether_append(s, STR("q"), AETHER_EXPECT_EXACT, 0, STR(q), &r, &last, NULL));
  CHECK(r.already_appended == 1 && r.last_sequence == first.last_sequence && last == 2);

  /* A commit across actors is a retry only if every entry's events are stored. */
  both[0] = entry("x", AETHER_EXPECT_NO_STREAM, 0, array1(xa, sizeof(xa), EV(x1, "x-1", "x", 1)));
  both[1] = entry("y", AETHER_EXPECT_NO_STREAM, 0, array1(ya, sizeof(ya), EV(y1, "y-1", "y", 1)));
  CHECK_OK(aether_commit(s, both, 2, &first, NULL, NULL));
  CHECK(first.already_appended == 0 && first.last_sequence == first.first_sequence + 1);
  CHECK_OK(aether_commit(s, both, 2, &r, lasts, NULL));
  CHECK(r.already_appended == 1 && r.first_sequence == first.first_sequence &&
        r.last_sequence == first.last_sequence && lasts[0] == 1 && lasts[1] == 1);

  /* After a reopen (sled), a retry is still recognised. */
  s = reopen(s);
  CHECK_OK(aether_append(s, STR("a"), AETHER_EXPECT_NO_STREAM, 0, STR(batch), &r, NULL, NULL));
  CHECK(r.already_appended == 1 && r.first_sequence == 1 && r.last_sequence == 2);
  r.already_appended = 0;
  CHECK_OK(aether_commit(s, both, 2, &r, NULL, NULL));
  CHECK(r.already_appended == 1 && r.first_sequence == first.first_sequence);
  CHECK(last_seq(s) == first.last_sequence);
  close_backend(s);
}

static void test_commit_across_actors(void) {
  aether_store *s = open_backend(0);
  char e[512], a1[512], a2[512], b2[512], c0[512], aa[1200], bb[600], cc[600];
  char a3[600], b9[600], e1[600];
  aether_commit_entry entries[4];
  aether_commit_result r = {5, 55, 555};
  aether_error *err = NULL;
  int64_t lasts[4] = {-1, -1, -1, -1};
  int64_t got[16];
  size_t n;
  aether_bytes out = {NULL, 0};
  aether_event_stored notes[8];
  size_t count = 0;

  memset(notes, 0, sizeof(notes));
  CHECK_OK(aether_save_event(s, STR(EV(e, "b-1", "b", 1)), NULL, NULL, NULL));
  CHECK_OK(aether_save_event(s, STR(EV(e, "c-1", "c", 1)), NULL, NULL, NULL));
  CHECK(drain(s) == 2);

  array2(aa, sizeof(aa), EV(a1, "a-1", "a", 1), EV(a2, "a-2", "a", 2));
  array1(bb, sizeof(bb), EV(b2, "b-2", "b", 2));
  array1(cc, sizeof(cc), EV(c0, "c-auto", "c", 0));
  entries[0] = entry("a", AETHER_EXPECT_NO_STREAM, 0, aa);
  entries[1] = entry("b", AETHER_EXPECT_EXACT, 1, bb);
  entries[2] = entry("c", AETHER_EXPECT_STREAM_EXISTS, 0, cc);
  entries[3] = entry("d", AETHER_EXPECT_NO_STREAM, 0, NULL); /* condition only */
  CHECK_STATUS_ERR(aether_commit(s, entries, 4, &r, lasts, &err), AETHER_OK, err);
  CHECK(r.already_appended == 0 && r.first_sequence == 3 && r.last_sequence == 6);
  CHECK(lasts[0] == 2 && lasts[1] == 2 && lasts[2] == 2 && lasts[3] == 0);
  /* One notification per event, in commit order. */
  CHECK_OK(aether_poll_event_stored_batch(s, 0, notes, 8, &count, NULL));
  CHECK(count == 4);
  if (count == 4) {
    CHECK(notes[0].sequence == 3 && notes[0].version == 1 && notes[0].actor_id_len == 1 &&
          notes[0].actor_id[0] == 'a');
    CHECK(notes[2].sequence == 5 && notes[2].actor_id[0] == 'b');
    CHECK(notes[3].sequence == 6 && notes[3].actor_id[0] == 'c' && notes[3].version == 2);
  }
  aether_event_stored_clear_batch(notes, count);
  CHECK_OK(aether_read_all(s, 3, 10, &out, NULL));
  n = json_ints(&out, "sequence", got, 16);
  CHECK_INTS(got, n, 3, 4, 5, 6);
  aether_bytes_free(&out);
  CHECK(latest(s, "d") == 0);

  /* Two failed conditions: both reported, nothing written, outputs untouched. */
  r.already_appended = 9;
  lasts[0] = lasts[1] = lasts[2] = lasts[3] = -7;
  entries[0] = entry("a", AETHER_EXPECT_EXACT, 2, array1(a3, sizeof(a3), EV(e, "a-3", "a", 3)));
  entries[1] = entry("b", AETHER_EXPECT_EXACT, 1, array1(b9, sizeof(b9), EV(e, "b-9", "b", 9)));
  entries[2] = entry("e", AETHER_EXPECT_NO_STREAM, 0, array1(e1, sizeof(e1), EV(e, "e-1", "e", 1)));
  entries[3] = entry("c", AETHER_EXPECT_NO_STREAM, 0, NULL);
  CHECK_STATUS(aether_commit(s, entries, 4, &r, lasts, &err), AETHER_VERSION_CONFLICT);
  CHECK(aether_error_conflict_count(err) == 2);
  check_conflict_at(err, 0, "b", AETHER_EXPECT_EXACT, 1, 9, 2);
  check_conflict_at(err, 1, "c", AETHER_EXPECT_NO_STREAM, 0, 0, 2);
  {
    const uint8_t *a = NULL;
    size_t len = 0;
    int mode = 0;
    int64_t x = 0, y = 0, z = 0;
    CHECK_STATUS(aether_error_conflict_at(err, 2, &a, &len, &mode, &x, &y, &z), AETHER_NOT_FOUND);
    CHECK(a == NULL && len == 0 && mode == 0);
  }
  CHECK(strstr(aether_error_message(err), "\"b\"") != NULL);
  CHECK(strstr(aether_error_message(err), "\"c\"") != NULL);
  aether_error_free(err);
  err = NULL;
  CHECK(r.already_appended == 9 && r.first_sequence == 3);
  CHECK(lasts[0] == -7 && lasts[3] == -7);
  CHECK(last_seq(s) == 6 && latest(s, "a") == 2 && latest(s, "e") == 0);
  CHECK(drain(s) == 0);

  /* aether_append of "[]" checks a condition only: nothing written, last version 0. */
  CHECK_OK(aether_append(s, STR("a"), AETHER_EXPECT_EXACT, 2, STR("[]"), &r, &lasts[0], NULL));
  CHECK(r.already_appended == 0 && r.first_sequence == 0 && r.last_sequence == 0 &&
        lasts[0] == 0);
  CHECK_ONE_CONFLICT(aether_append(s, STR("a"), AETHER_EXPECT_NO_STREAM, 0, STR("[]"), &r,
                                   &lasts[0], &err),
                     err, "a", AETHER_EXPECT_NO_STREAM, 0, 0, 2);
  /* A commit of conditions only checks and writes nothing; "[]" is condition-only too. */
  entries[0] = entry("a", AETHER_EXPECT_EXACT, 2, NULL);
  entries[1] = entry("b", AETHER_EXPECT_STREAM_EXISTS, 0, "[]");
  CHECK_OK(aether_commit(s, entries, 2, &r, lasts, NULL));
  CHECK(r.already_appended == 0 && r.first_sequence == 0 && r.last_sequence == 0);
  CHECK(lasts[0] == 0 && lasts[1] == 0);
  entries[0] = entry("a", AETHER_EXPECT_EXACT, 1, NULL);
  CHECK_STATUS(aether_commit(s, entries, 1, &r, NULL, &err), AETHER_VERSION_CONFLICT);
  CHECK(aether_error_conflict_count(err) == 1);
  check_conflict_at(err, 0, "a", AETHER_EXPECT_EXACT, 1, 0, 2);
  aether_error_free(err);
  err = NULL;
  CHECK(last_seq(s) == 6);
  /* Each actor replays its own events only. */
  n = versions_of(s, "b", got, 16);
  CHECK_INTS(got, n, 1, 2);
  CHECK_OK(aether_get_events(s, STR("a"), 0, &out, NULL));
  CHECK_BYTES_EQ(out, aa);
  aether_bytes_free(&out);
  close_backend(s);
}

static void test_range_reads(void) {
  aether_store *s = open_backend(0);
  char e[512], want[4096], x[1200], y[600];
  aether_bytes out = {NULL, 0};
  aether_error *err = NULL;
  int64_t got[32], v;
  size_t n;
  aether_commit_entry entries[2];
  char e20[512], e21[512], e22[512];

  for (v = 1; v <= 20; v++) {
    char id[32];
    snprintf(id, sizeof(id), "a-%lld", (long long)v);
    CHECK_OK(aether_save_event(s, STR(EV(e, id, "a", v)), NULL, NULL, NULL));
    snprintf(id, sizeof(id), "ab-%lld", (long long)v);
    CHECK_OK(aether_save_event(s, STR(EV(e, id, "ab", v)), NULL, NULL, NULL));
  }
#define RANGE(from, to, limit, dir)                                                       \
  do {                                                                                  \
    CHECK_STATUS_ERR(aether_get_events_range(s, STR("a"), (from), (to), (limit), (dir), \
                                             &out, &err),                               \
                     AETHER_OK, err);                                                   \
    n = json_ints(&out, "version", got, 32);                                            \
    aether_bytes_free(&out);                                                            \
  } while (0)
  RANGE(5, 8, SIZE_MAX, AETHER_FORWARD);
  CHECK_INTS(got, n, 5, 6, 7, 8);
  RANGE(5, 8, 2, AETHER_FORWARD);
  CHECK_INTS(got, n, 5, 6);
  RANGE(5, 8, SIZE_MAX, AETHER_BACKWARD);
  CHECK_INTS(got, n, 8, 7, 6, 5);
  RANGE(5, 8, 3, AETHER_BACKWARD);
  CHECK_INTS(got, n, 8, 7, 6);
  RANGE(0, INT64_MAX, 1, AETHER_BACKWARD); /* the last event */
  CHECK_INTS(got, n, 20);
  RANGE(1, INT64_MAX, 3, AETHER_BACKWARD);
  CHECK_INTS(got, n, 20, 19, 18);
  RANGE(19, INT64_MAX, SIZE_MAX, AETHER_FORWARD);
  CHECK_INTS(got, n, 19, 20);
  RANGE(7, 7, SIZE_MAX, AETHER_BACKWARD);
  CHECK_INTS(got, n, 7);
  RANGE(21, 30, SIZE_MAX, AETHER_FORWARD);
  CHECK(n == 0);
  RANGE(1, 20, 0, AETHER_FORWARD);
  CHECK(n == 0);
#undef RANGE
  /* The exact bytes: the stored encodings, newest first. */
  CHECK_OK(aether_get_events_range(s, STR("a"), 0, INT64_MAX, 1, AETHER_BACKWARD, &out, NULL));
  snprintf(want, sizeof(want), "[%s]", EV(e, "a-20", "a", 20));
  CHECK_BYTES_EQ(out, want);
  aether_bytes_free(&out);
  CHECK_OK(aether_get_events_range(s, STR("nobody"), 0, INT64_MAX, 1, AETHER_BACKWARD, &out,
                                   NULL));
  CHECK_BYTES_EQ(out, "[]");
  aether_bytes_free(&out);

  /* Events of a commit across actors read back per actor, both ways. */
  EV(e21, "a-21", "a", 21);
  EV(e22, "a-22", "a", 22);
  entries[0] = entry("a", AETHER_EXPECT_ANY, 0, array2(x, sizeof(x), e21, e22));
  entries[1] = entry("ab", AETHER_EXPECT_ANY, 0, array1(y, sizeof(y), EV(e, "ab-21", "ab", 21)));
  CHECK_OK(aether_commit(s, entries, 2, NULL, NULL, NULL));
  CHECK_OK(aether_get_events_range(s, STR("a"), 0, INT64_MAX, 3, AETHER_BACKWARD, &out, NULL));
  snprintf(want, sizeof(want), "[%s,%s,%s]", e22, e21, EV(e20, "a-20", "a", 20));
  CHECK_BYTES_EQ(out, want);
  aether_bytes_free(&out);
  close_backend(s);
}

static void test_read_all_filtered(void) {
  aether_store *s = open_backend(0);
  char e[512];
  aether_bytes out = {NULL, 0};
  aether_error *err = NULL;
  int64_t got[64], v;
  size_t n;
  aether_str placed[2] = {{(const uint8_t *)"Placed", 6}, {(const uint8_t *)"Missing", 7}};
  aether_str missing[1] = {{(const uint8_t *)"Missing", 7}};
  aether_event_filter f;

  for (v = 1; v <= 10; v++) {
    const char *type = v % 3 == 0 ? "Placed" : "Other";
    char id[32];
    snprintf(id, sizeof(id), "o-%lld", (long long)v);
    CHECK_OK(aether_save_event(s, STR(typed_event(e, sizeof(e), id, type, "order-1", v)), NULL,
                               NULL, NULL));
    snprintf(id, sizeof(id), "u-%lld", (long long)v);
    CHECK_OK(aether_save_event(s, STR(typed_event(e, sizeof(e), id, type, "user-1", v)), NULL,
                               NULL, NULL));
  }
#define FILTERED(from, limit, filter)                                                      \
  do {                                                                                   \
    CHECK_STATUS_ERR(aether_read_all_filtered(s, (from), (limit), (filter), &out, &err), \
                     AETHER_OK, err);                                                    \
    n = json_ints(&out, "sequence", got, 64);                                            \
    aether_bytes_free(&out);                                                             \
  } while (0)
  memset(&f, 0, sizeof(f));
  f.event_types = placed;
  f.event_types_len = 1;
  FILTERED(1, 100, &f);
  CHECK_INTS(got, n, 5, 6, 11, 12, 17, 18);
  FILTERED(1, 3, &f);
  CHECK_INTS(got, n, 5, 6, 11);
  FILTERED(7, 100, &f);
  CHECK_INTS(got, n, 11, 12, 17, 18);
  FILTERED(0, 100, &f);
  CHECK_INTS(got, n, 5, 6, 11, 12, 17, 18);
  memset(&f, 0, sizeof(f));
  f.actor_prefix = (const uint8_t *)"order-";
  f.actor_prefix_len = 6;
  FILTERED(1, 100, &f);
  CHECK_INTS(got, n, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19);
  f.event_types = placed;
  f.event_types_len = 2;
  f.actor_prefix = (const uint8_t *)"user";
  f.actor_prefix_len = 4;
  FILTERED(1, 100, &f);
  CHECK_INTS(got, n, 6, 12, 18);
  memset(&f, 0, sizeof(f));
  f.event_types = missing;
  f.event_types_len = 1;
  FILTERED(1, 100, &f);
  CHECK(n == 0);
  /* No filter, or an empty one: every event. */
  FILTERED(1, 100, NULL);
  CHECK(n == 20);
  memset(&f, 0, sizeof(f));
  FILTERED(1, 100, &f);
  CHECK(n == 20);
  FILTERED(1, 0, NULL);
  CHECK(n == 0);
  FILTERED(UINT64_MAX, SIZE_MAX, NULL);
  CHECK(n == 0);
#undef FILTERED
  /* The layout and bytes of aether_read_all. */
  f.event_types = placed;
  f.event_types_len = 1;
  f.actor_prefix = (const uint8_t *)"user";
  f.actor_prefix_len = 4;
  CHECK_OK(aether_read_all_filtered(s, 1, 1, &f, &out, NULL));
  {
    aether_bytes plain = {NULL, 0};
    CHECK_OK(aether_read_all(s, 6, 1, &plain, NULL));
    CHECK(out.len == plain.len && memcmp(out.ptr, plain.ptr, plain.len) == 0);
    aether_bytes_free(&plain);
  }
  aether_bytes_free(&out);
  close_backend(s);
}

static const char *snapshot_json(char *buf, size_t cap, const char *actor, int64_t version) {
  snprintf(buf, cap,
           "{\"actorId\":\"%s\",\"version\":%lld,\"state\":{\"v\":%lld},"
           "\"timestamp\":\"2024-01-02T03:04:05Z\"}",
           actor, (long long)version, (long long)version);
  return buf;
}

static void test_snapshot_history(void) {
  aether_store *s = open_backend(0);
  char snap[256], want[256];
  uint8_t marker = 0;
  aether_bytes out = {&marker, 3};
  aether_error *err = NULL;
  int64_t v;

  CHECK_STATUS_ERR(aether_get_snapshot(s, STR("a"), 100, &out, &err), AETHER_NOT_FOUND, err);
  CHECK(out.ptr == &marker && out.len == 3);
  for (v = 2; v <= 8; v += 2) {
    CHECK_OK(aether_save_snapshot(s, STR(snapshot_json(snap, sizeof(snap), "a", v)), NULL));
  }
  /* The default retention keeps the newest three (8, 6, 4). */
#define AT_OR_BELOW(at, version)                                                       \
  do {                                                                                 \
    CHECK_STATUS_ERR(aether_get_snapshot(s, STR("a"), (at), &out, &err), AETHER_OK, err); \
    CHECK_BYTES_EQ(out, snapshot_json(want, sizeof(want), "a", (version)));           \
    aether_bytes_free(&out);                                                           \
  } while (0)
  AT_OR_BELOW(INT64_MAX, 8);
  AT_OR_BELOW(100, 8);
  AT_OR_BELOW(8, 8);
  AT_OR_BELOW(7, 6);
  AT_OR_BELOW(5, 4);
  AT_OR_BELOW(4, 4);
  out.ptr = &marker;
  out.len = 3;
  CHECK_STATUS(aether_get_snapshot(s, STR("a"), 3, &out, &err), AETHER_NOT_FOUND);
  CHECK(strstr(aether_error_message(err), "snapshot") != NULL);
  aether_error_free(err);
  err = NULL;
  CHECK(out.ptr == &marker && out.len == 3);
  CHECK_STATUS(aether_get_snapshot(s, STR("a"), 0, &out, NULL), AETHER_NOT_FOUND);
  CHECK_STATUS(aether_get_snapshot(s, STR("a"), -1, &out, NULL), AETHER_NOT_FOUND);
  CHECK_STATUS(aether_get_snapshot(s, STR("b"), 5, &out, NULL), AETHER_NOT_FOUND);
  CHECK_OK(aether_get_latest_snapshot(s, STR("a"), &out, NULL));
  CHECK_BYTES_EQ(out, snapshot_json(want, sizeof(want), "a", 8));
  aether_bytes_free(&out);
  /* Below the newest: refused, the history unchanged. */
  CHECK_STATUS(aether_save_snapshot(s, STR(snapshot_json(snap, sizeof(snap), "a", 5)), NULL),
               AETHER_STALE_SNAPSHOT);
  AT_OR_BELOW(5, 4);
  /* The history survives a reopen (sled). */
  s = reopen(s);
  AT_OR_BELOW(7, 6);
  AT_OR_BELOW(INT64_MAX, 8);
#undef AT_OR_BELOW
  close_backend(s);
}

/* aether_store_open_sled_with_snapshot_retention: 1 keeps only the newest, 5 keeps all
 * four, 0 the default three (after a reopen too); out of range is refused. */
static void test_snapshot_retention_option(void) {
  char snap[256], want[256];
  aether_bytes out = {NULL, 0};
  const uint32_t retention[3] = {1, 5, 0};
  aether_error *err = NULL;
  int i, round;
  int64_t v;
  for (i = 0; i < 3; i++) {
    aether_sled_options o;
    aether_store *s = NULL;
    char *dir = make_temp_dir();
    aether_sled_options_default(&o);
    o.cache_capacity_bytes = 8u << 20;
    CHECK_OK(aether_store_open_sled_with_snapshot_retention(dir, &o, retention[i], &s, NULL));
    if (s == NULL) {
      remove_temp_dir(dir);
      return;
    }
    for (v = 2; v <= 8; v += 2) {
      CHECK_OK(aether_save_snapshot(s, STR(snapshot_json(snap, sizeof(snap), "a", v)), NULL));
    }
    for (round = 0; round < 2; round++) {
      switch (retention[i]) {
      case 1:
        CHECK_STATUS(aether_get_snapshot(s, STR("a"), 7, &out, NULL), AETHER_NOT_FOUND);
        break;
      case 5:
        CHECK_OK(aether_get_snapshot(s, STR("a"), 3, &out, NULL));
        CHECK_BYTES_EQ(out, snapshot_json(want, sizeof(want), "a", 2));
        aether_bytes_free(&out);
        break;
      default:
        CHECK_STATUS(aether_get_snapshot(s, STR("a"), 3, &out, NULL), AETHER_NOT_FOUND);
        CHECK_OK(aether_get_snapshot(s, STR("a"), 5, &out, NULL));
        CHECK_BYTES_EQ(out, snapshot_json(want, sizeof(want), "a", 4));
        aether_bytes_free(&out);
      }
      CHECK_OK(aether_get_snapshot(s, STR("a"), 8, &out, NULL));
      CHECK_BYTES_EQ(out, snapshot_json(want, sizeof(want), "a", 8));
      aether_bytes_free(&out);
      CHECK_OK(aether_store_close(s, NULL));
      aether_store_free(s);
      s = NULL;
      if (round == 0) {
        /* Reopened with the same retention, the history is the same. */
        CHECK_OK(aether_store_open_sled_with_snapshot_retention(dir, &o, retention[i], &s, NULL));
        if (s == NULL) {
          break;
        }
      }
    }
    /* The store is closed now: the directory is free for the checks of arguments. */
    if (i == 0) {
      CHECK_STATUS(aether_store_open_sled_with_snapshot_retention(NULL, &o, 1, &s, &err),
                   AETHER_INVALID_ARGUMENT);
      CHECK(strstr(aether_error_message(err), "path") != NULL);
      aether_error_free(err);
      err = NULL;
      CHECK_STATUS(aether_store_open_sled_with_snapshot_retention(dir, &o, 1, NULL, NULL),
                   AETHER_INVALID_ARGUMENT);
      o.durability = 9;
      CHECK_STATUS(aether_store_open_sled_with_snapshot_retention(dir, &o, 1, &s, NULL),
                   AETHER_INVALID_ARGUMENT);
      CHECK(s == NULL);
    }
    remove_temp_dir(dir);
  }
}

int main(void) {
  int b;
  for (b = 0; b < BACKEND_COUNT; b++) {
    current_backend = (enum backend)b;
    printf("# backend: %s\n", backend_names[b]);
    run_test(test_expected_modes);
    run_test(test_automatic_versions);
    run_test(test_idempotent_retry);
    run_test(test_commit_across_actors);
    run_test(test_range_reads);
    run_test(test_read_all_filtered);
    run_test(test_snapshot_history);
  }
  run_test(test_snapshot_retention_option);
  return harness_finish();
}
