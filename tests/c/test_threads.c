/*
 * Concurrency through the C interface: 8 threads race to save the same versions of the
 * same actors while another thread polls EventStored; 8 threads x 10,000 read-then-save
 * attempts on 16 overlapping actors; closing wakes a waiting poller;
 * closing while threads save loses no acknowledged save.
 */
#include "backends.h"

#include <pthread.h>
#include <time.h>

#define SAVERS 8
#define ACTORS 4
#define VERSIONS 100

static aether_store *race_store;
static pthread_mutex_t race_lock = PTHREAD_MUTEX_INITIALIZER;
static int wins[ACTORS][VERSIONS + 1];
static int winner[ACTORS][VERSIONS + 1];
static int polled[ACTORS][VERSIONS + 1];
static int polled_from[ACTORS][VERSIONS + 1];
static int bad_conflicts, other_failures, order_violations, bad_notifications;
static int savers_done, polled_total;

static void *saver(void *arg) {
  int t = *(const int *)arg;
  int v, a;
  char id[64], actor[32], json[512];
  for (v = 1; v <= VERSIONS; v++) {
    for (a = 0; a < ACTORS; a++) {
      int64_t current = -1;
      aether_status status;
      snprintf(id, sizeof(id), "t%d-v%d", t, v);
      snprintf(actor, sizeof(actor), "actor-%d", a);
      event_json(json, sizeof(json), id, actor, v);
      status = aether_save_event(race_store, STR(json), &current, NULL, NULL);
      pthread_mutex_lock(&race_lock);
      if (status == AETHER_OK) {
        wins[a][v]++;
        winner[a][v] = t;
      } else if (status == AETHER_VERSION_CONFLICT) {
        if (current < v) {
          bad_conflicts++;
        }
      } else {
        other_failures++;
      }
      pthread_mutex_unlock(&race_lock);
    }
  }
  return NULL;
}

static void *poller(void *arg) {
  aether_event_stored batch[64] = {{0}};
  int64_t last_version[ACTORS] = {0, 0, 0, 0};
  uint64_t last_sequence = 0;
  int idle = 0;
  (void)arg;
  for (;;) {
    size_t count = 0, i;
    aether_status status = aether_poll_event_stored_batch(race_store, 50, batch, 64, &count, NULL);
    if (status == AETHER_POLL_TIMEOUT) {
      int done;
      pthread_mutex_lock(&race_lock);
      done = savers_done && (polled_total == ACTORS * VERSIONS || ++idle > 100);
      pthread_mutex_unlock(&race_lock);
      if (done) {
        return NULL;
      }
      continue;
    }
    if (status != AETHER_OK) {
      pthread_mutex_lock(&race_lock);
      other_failures++;
      pthread_mutex_unlock(&race_lock);
      return NULL;
    }
    pthread_mutex_lock(&race_lock);
    for (i = 0; i < count; i++) {
      const aether_event_stored *n = &batch[i];
      int a = -1, t = -1, v = -1;
      char actor[32], id[64];
      snprintf(actor, sizeof(actor), "%.*s", (int)n->actor_id_len, (const char *)n->actor_id);
      snprintf(id, sizeof(id), "%.*s", (int)n->event_id_len, (const char *)n->event_id);
      if (sscanf(actor, "actor-%d", &a) != 1 || sscanf(id, "t%d-v%d", &t, &v) != 2 || a < 0 ||
          a >= ACTORS || v != n->version || v < 1 || v > VERSIONS) {
        bad_notifications++;
        continue;
      }
      polled[a][v]++;
      polled_from[a][v] = t;
      polled_total++;
      if (n->version <= last_version[a] || n->sequence <= last_sequence) {
        order_violations++;
      }
      last_version[a] = n->version;
      last_sequence = n->sequence;
    }
    pthread_mutex_unlock(&race_lock);
    aether_event_stored_clear_batch(batch, count);
  }
}

static void test_race_while_polling(void) {
  pthread_t savers[SAVERS], poll_thread;
  int ids[SAVERS];
  int t, a, v;
  uint64_t sequence = 0;
  int64_t version = 0;
  aether_metrics m;

  memset(wins, 0, sizeof(wins));
  memset(polled, 0, sizeof(polled));
  bad_conflicts = other_failures = order_violations = bad_notifications = 0;
  savers_done = polled_total = 0;
  race_store = open_backend(0);

  CHECK(pthread_create(&poll_thread, NULL, poller, NULL) == 0);
  for (t = 0; t < SAVERS; t++) {
    ids[t] = t;
    CHECK(pthread_create(&savers[t], NULL, saver, &ids[t]) == 0);
  }
  for (t = 0; t < SAVERS; t++) {
    pthread_join(savers[t], NULL);
  }
  pthread_mutex_lock(&race_lock);
  savers_done = 1;
  pthread_mutex_unlock(&race_lock);
  pthread_join(poll_thread, NULL);

  CHECK(bad_conflicts == 0);
  CHECK(other_failures == 0);
  CHECK(order_violations == 0);
  CHECK(bad_notifications == 0);
  CHECK(polled_total == ACTORS * VERSIONS);
  for (a = 0; a < ACTORS; a++) {
    for (v = 1; v <= VERSIONS; v++) {
      if (wins[a][v] != 1 || polled[a][v] != 1 || polled_from[a][v] != winner[a][v]) {
        fprintf(stderr, "actor %d version %d: %d winners, polled %d times\n", a, v, wins[a][v],
                polled[a][v]);
        harness_current_failed = 1;
      }
    }
  }
  for (a = 0; a < ACTORS; a++) {
    char actor[32];
    snprintf(actor, sizeof(actor), "actor-%d", a);
    CHECK_OK(aether_get_latest_version(race_store, STR(actor), &version, NULL));
    CHECK(version == VERSIONS);
  }
  CHECK_OK(aether_last_sequence(race_store, &sequence, NULL));
  CHECK(sequence == ACTORS * VERSIONS);
  CHECK_OK(aether_store_metrics(race_store, &m, NULL));
  CHECK(m.events_saved == ACTORS * VERSIONS);
  CHECK(m.version_conflicts == (SAVERS - 1) * ACTORS * VERSIONS);
  CHECK(m.event_stored_dropped == 0);
  close_backend(race_store);
}

/*
 * The scale: SAVERS threads each make AETHER_RACE_SAVES (default 10000; the
 * valgrind run of run.sh lowers it) save attempts on RACE_ACTORS overlapping actors,
 * each reading the actor's latest version and saving the next. Afterwards: exactly one
 * winner per (actor, version), versions 1..N contiguous per actor, the sequence gapless,
 * and every success polled exactly once.
 */
#define RACE_ACTORS 16

static int race_saves;
static size_t race_max_version; /* bound on any actor's version: SAVERS * race_saves */
static int *race_wins;          /* [actor * (race_max_version + 1) + version] */
static int *race_winner;        /* the winning attempt's id number: t * race_saves + i */
static int *race_polled;
static long race_total_wins, race_total_conflicts;
static int race_bad_conflicts, race_other_failures;

static size_t race_slot(int a, int64_t v) {
  return (size_t)a * (race_max_version + 1) + (size_t)v;
}

static int race_saves_from_env(void) {
  const char *s = getenv("AETHER_RACE_SAVES");
  long n = s != NULL && s[0] != '\0' ? strtol(s, NULL, 10) : 10000;
  return n > 0 && n <= 1000000 ? (int)n : 10000;
}

static void *read_then_saver(void *arg) {
  int t = *(const int *)arg;
  int i;
  long wins = 0, conflicts = 0;
  char id[64], actor[32], json[512];
  for (i = 0; i < race_saves; i++) {
    /* A pseudo-random actor per attempt (a hash of thread and attempt): the threads
     * keep colliding on the same actors. */
    unsigned h = (unsigned)t * 2654435761u ^ (unsigned)i * 40503u;
    int a = (int)((h ^ (h >> 13)) % RACE_ACTORS);
    int64_t latest = -1, current = -1;
    aether_status status;
    snprintf(actor, sizeof(actor), "actor-%d", a);
    if (aether_get_latest_version(race_store, STR(actor), &latest, NULL) != AETHER_OK ||
        latest < 0 || (size_t)latest >= race_max_version) {
      pthread_mutex_lock(&race_lock);
      race_other_failures++;
      pthread_mutex_unlock(&race_lock);
      continue;
    }
    snprintf(id, sizeof(id), "t%d-i%d", t, i);
    event_json(json, sizeof(json), id, actor, latest + 1);
    status = aether_save_event(race_store, STR(json), &current, NULL, NULL);
    pthread_mutex_lock(&race_lock);
    if (status == AETHER_OK && current == latest + 1) {
      wins++;
      race_wins[race_slot(a, latest + 1)]++;
      race_winner[race_slot(a, latest + 1)] = t * race_saves + i;
    } else if (status == AETHER_VERSION_CONFLICT) {
      conflicts++;
      if (current < latest + 1) {
        race_bad_conflicts++;
      }
    } else {
      race_other_failures++;
    }
    pthread_mutex_unlock(&race_lock);
  }
  pthread_mutex_lock(&race_lock);
  race_total_wins += wins;
  race_total_conflicts += conflicts;
  pthread_mutex_unlock(&race_lock);
  return NULL;
}

/* Find `key` from *pos within the NUL-terminated text, then `prefix` right after it,
 * parse the decimal integer that follows into *value and move *pos past it. Returns 0 if
 * missing. Hand-rolled: libc's sscanf (and ASan's strict_string_checks for strstr and
 * strtoll) take strlen of the whole remaining text on every call, quadratic here. */
static int scan_after(const char **pos, const char *key, const char *prefix, long long *value) {
  size_t key_len = strlen(key), prefix_len = strlen(prefix);
  const char *p = *pos;
  int digits = 0;
  while (*p != '\0' && strncmp(p, key, key_len) != 0) {
    p++;
  }
  if (*p == '\0') {
    return 0;
  }
  p += key_len;
  if (strncmp(p, prefix, prefix_len) != 0) {
    return 0;
  }
  p += prefix_len;
  *value = 0;
  while (*p >= '0' && *p <= '9' && digits < 18) {
    *value = *value * 10 + (*p - '0');
    p++;
    digits++;
  }
  if (digits == 0) {
    return 0;
  }
  *pos = p;
  return 1;
}

/* read_all: sequences 1..total in order, each event the recorded winner of its
 * (actor, version), each (actor, version) once. */
static void check_read_all(long total) {
  aether_bytes all = {NULL, 0};
  char *text;
  const char *pos;
  int *seen = (int *)calloc((size_t)RACE_ACTORS * (race_max_version + 1), sizeof(int));
  long expected_sequence = 1;
  int bad = 0;
  CHECK(seen != NULL);
  CHECK_OK(aether_read_all(race_store, 1, (size_t)total + 10, &all, NULL));
  text = (char *)malloc(all.len + 1);
  CHECK(text != NULL);
  if (seen == NULL || text == NULL) {
    abort();
  }
  if (all.len > 0) {
    memcpy(text, all.ptr, all.len);
  }
  text[all.len] = '\0';
  aether_bytes_free(&all);
  pos = text;
  for (;;) {
    long long sequence, t, i, a, v;
    if (!scan_after(&pos, "\"sequence\":", "", &sequence)) {
      break;
    }
    if (sequence != expected_sequence || !scan_after(&pos, "\"id\":\"", "t", &t) ||
        !scan_after(&pos, "-i", "", &i) || !scan_after(&pos, "\"actorId\":\"", "actor-", &a) ||
        !scan_after(&pos, "\"version\":", "", &v) || a < 0 || a >= RACE_ACTORS || v < 1 ||
        (size_t)v > race_max_version ||
        race_winner[race_slot((int)a, v)] != t * race_saves + i ||
        seen[race_slot((int)a, v)]++ != 0) {
      if (bad++ < 5) {
        fprintf(stderr, "read_all: unexpected record at sequence %lld (expected %ld)\n",
                sequence, expected_sequence);
      }
    }
    expected_sequence++;
  }
  CHECK(bad == 0);
  CHECK(expected_sequence - 1 == total);
  free(seen);
  free(text);
}

static void test_read_then_save_race_at_scale(void) {
  pthread_t savers[SAVERS];
  int ids[SAVERS];
  int t, a;
  size_t slots;
  int64_t latest[RACE_ACTORS];
  long sum_latest = 0, drained = 0;
  int bad_polls = 0, drain_failures = 0;
  uint64_t sequence = 0;
  aether_metrics m;
  aether_event_stored batch[256] = {{0}};

  /* Durable sled is covered at small scale above; here buffered sled and memory. */
  if (current_backend == BACKEND_SLED_DURABLE) {
    return;
  }
  race_saves = race_saves_from_env();
  race_max_version = (size_t)SAVERS * (size_t)race_saves;
  slots = (size_t)RACE_ACTORS * (race_max_version + 1);
  race_wins = (int *)calloc(slots, sizeof(int));
  race_winner = (int *)calloc(slots, sizeof(int));
  race_polled = (int *)calloc(slots, sizeof(int));
  if (race_wins == NULL || race_winner == NULL || race_polled == NULL) {
    abort();
  }
  race_total_wins = race_total_conflicts = 0;
  race_bad_conflicts = race_other_failures = 0;
  /* Every success must still be waiting when the threads are done. */
  race_store = open_backend(race_max_version + 1);

  for (t = 0; t < SAVERS; t++) {
    ids[t] = t;
    CHECK(pthread_create(&savers[t], NULL, read_then_saver, &ids[t]) == 0);
  }
  for (t = 0; t < SAVERS; t++) {
    pthread_join(savers[t], NULL);
  }
  printf("#   %d threads x %d attempts on %d actors: %ld saved, %ld conflicts\n", SAVERS,
         race_saves, RACE_ACTORS, race_total_wins, race_total_conflicts);

  CHECK(race_bad_conflicts == 0);
  CHECK(race_other_failures == 0);
  CHECK(race_total_wins + race_total_conflicts == (long)SAVERS * race_saves);
  CHECK(race_total_wins > 0);

  /* One winner per (actor, version); versions 1..latest contiguous per actor. */
  for (a = 0; a < RACE_ACTORS; a++) {
    char actor[32];
    size_t v;
    int reported = 0;
    snprintf(actor, sizeof(actor), "actor-%d", a);
    latest[a] = -1;
    CHECK_OK(aether_get_latest_version(race_store, STR(actor), &latest[a], NULL));
    sum_latest += (long)latest[a];
    for (v = 1; v <= race_max_version; v++) {
      int want = (int64_t)v <= latest[a] ? 1 : 0;
      if (race_wins[race_slot(a, (int64_t)v)] != want && reported++ < 5) {
        fprintf(stderr, "actor %d version %zu: %d winners (latest %lld)\n", a, v,
                race_wins[race_slot(a, (int64_t)v)], (long long)latest[a]);
        harness_current_failed = 1;
      }
    }
  }
  CHECK(sum_latest == race_total_wins);

  /* The sequence is gapless: last_sequence == wins, read_all gives 1..wins. */
  CHECK_OK(aether_last_sequence(race_store, &sequence, NULL));
  CHECK(sequence == (uint64_t)race_total_wins);
  check_read_all(race_total_wins);

  /* Every success notified exactly once, by its winner. */
  for (;;) {
    size_t count = 0, i;
    aether_status status =
        aether_poll_event_stored_batch(race_store, 0, batch, 256, &count, NULL);
    if (status == AETHER_POLL_TIMEOUT) {
      break;
    }
    if (status != AETHER_OK) {
      drain_failures++;
      break;
    }
    for (i = 0; i < count; i++) {
      const aether_event_stored *n = &batch[i];
      int ta = -1, ti = -1, na = -1;
      char actor[32], id[64];
      snprintf(actor, sizeof(actor), "%.*s", (int)n->actor_id_len, (const char *)n->actor_id);
      snprintf(id, sizeof(id), "%.*s", (int)n->event_id_len, (const char *)n->event_id);
      if (sscanf(actor, "actor-%d", &na) != 1 || sscanf(id, "t%d-i%d", &ta, &ti) != 2 ||
          na < 0 || na >= RACE_ACTORS || n->version < 1 ||
          (size_t)n->version > race_max_version ||
          race_winner[race_slot(na, n->version)] != ta * race_saves + ti) {
        bad_polls++;
        continue;
      }
      race_polled[race_slot(na, n->version)]++;
      drained++;
    }
    aether_event_stored_clear_batch(batch, count);
  }
  CHECK(drain_failures == 0);
  CHECK(bad_polls == 0);
  CHECK(drained == race_total_wins);
  for (a = 0; a < RACE_ACTORS; a++) {
    int64_t v;
    int reported = 0;
    for (v = 1; v <= latest[a]; v++) {
      if (race_polled[race_slot(a, v)] != 1 && reported++ < 5) {
        fprintf(stderr, "actor %d version %lld polled %d times\n", a, (long long)v,
                race_polled[race_slot(a, v)]);
        harness_current_failed = 1;
      }
    }
  }
  CHECK_OK(aether_store_metrics(race_store, &m, NULL));
  CHECK(m.events_saved == (uint64_t)race_total_wins);
  CHECK(m.version_conflicts == (uint64_t)race_total_conflicts);
  CHECK(m.event_stored_published == (uint64_t)race_total_wins);
  CHECK(m.event_stored_dropped == 0);
  close_backend(race_store);
  free(race_wins);
  free(race_winner);
  free(race_polled);
  race_wins = race_winner = race_polled = NULL;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  nanosleep(&ts, NULL);
}

static aether_status waiting_poll_status;

static void *waiting_poller(void *arg) {
  aether_event_stored n;
  (void)arg;
  memset(&n, 0, sizeof(n));
  waiting_poll_status = aether_poll_event_stored(race_store, 60000, &n, NULL);
  aether_event_stored_clear(&n);
  return NULL;
}

static void test_close_wakes_a_waiting_poller(void) {
  pthread_t thread;
  double start;
  race_store = open_backend(0);
  waiting_poll_status = AETHER_OK;
  CHECK(pthread_create(&thread, NULL, waiting_poller, NULL) == 0);
  sleep_ms(100);
  start = now_seconds();
  CHECK_OK(aether_store_close(race_store, NULL));
  pthread_join(thread, NULL);
  CHECK(now_seconds() - start < 10.0);
  CHECK(waiting_poll_status == AETHER_STORE_CLOSED);
  close_backend(race_store);
}

static int acknowledged[SAVERS];
static int unexpected_close_status;

static void *save_until_closed(void *arg) {
  int t = *(const int *)arg;
  char actor[32], json[512];
  int v;
  snprintf(actor, sizeof(actor), "closer-%d", t);
  for (v = 1;; v++) {
    aether_status status = aether_save_event(race_store, STR(event_json(json, sizeof(json), "e",
                                                                        actor, v)),
                                             NULL, NULL, NULL);
    if (status == AETHER_OK) {
      acknowledged[t] = v;
    } else {
      if (status != AETHER_STORE_CLOSED) {
        pthread_mutex_lock(&race_lock);
        unexpected_close_status++;
        pthread_mutex_unlock(&race_lock);
      }
      return NULL;
    }
  }
}

/* Sled only: every save acknowledged before close is found after reopening. */
static void test_close_while_saving_loses_nothing(void) {
  pthread_t threads[SAVERS];
  int ids[SAVERS], t;
  char *dir;
  aether_store *reopened = NULL;
  aether_sled_options o;
  uint64_t sequence = 0, total = 0;

  if (current_backend == BACKEND_MEMORY) {
    return;
  }
  race_store = open_backend(0);
  unexpected_close_status = 0;
  for (t = 0; t < SAVERS; t++) {
    ids[t] = t;
    acknowledged[t] = 0;
    CHECK(pthread_create(&threads[t], NULL, save_until_closed, &ids[t]) == 0);
  }
  sleep_ms(200);
  CHECK_OK(aether_store_close(race_store, NULL));
  for (t = 0; t < SAVERS; t++) {
    pthread_join(threads[t], NULL);
  }
  CHECK(unexpected_close_status == 0);
  aether_store_free(race_store);

  dir = current_dir;
  aether_sled_options_default(&o);
  CHECK_OK(aether_store_open_sled(dir, &o, &reopened, NULL));
  if (reopened == NULL) {
    return;
  }
  for (t = 0; t < SAVERS; t++) {
    char actor[32];
    int64_t version = -1;
    snprintf(actor, sizeof(actor), "closer-%d", t);
    CHECK_OK(aether_get_latest_version(reopened, STR(actor), &version, NULL));
    CHECK(version == acknowledged[t]);
    total += (uint64_t)acknowledged[t];
  }
  CHECK_OK(aether_last_sequence(reopened, &sequence, NULL));
  CHECK(sequence == total);
  CHECK(total > 0);
  close_backend(reopened);
}

int main(void) {
  int b;
  for (b = 0; b < BACKEND_COUNT; b++) {
    current_backend = (enum backend)b;
    printf("# backend: %s\n", backend_names[b]);
    run_test(test_race_while_polling);
    run_test(test_read_then_save_race_at_scale);
    run_test(test_close_wakes_a_waiting_poller);
    run_test(test_close_while_saving_loses_nothing);
  }
  return harness_finish();
}
