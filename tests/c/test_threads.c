/*
 * Concurrency through the C interface: 8 threads race to save the same versions of the
 * same actors while another thread polls EventStored; closing wakes a waiting poller;
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
  aether_event_stored batch[64];
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
    run_test(test_close_wakes_a_waiting_poller);
    run_test(test_close_while_saving_loses_nothing);
  }
  return harness_finish();
}
