/*
 * Open/close cycles: a program that opens and frees stores all day must not grow.
 * Each cycle allocates what a real caller's would (a handle, notifications, result
 * buffers, an aether_error) and releases it; LeakSanitizer (the ASan run) and valgrind
 * report any definite leak at exit, and on Linux the file descriptors and threads of the
 * process are counted before and after, which no leak checker does.
 *
 * Cycles: 1000 by default. AETHER_SLED_CYCLES lowers the sled count: tests/c/run.sh sets
 * it to 100 for the valgrind run, where one sled open/save/close takes ~50x longer
 * (memory cycles stay at 1000 there; they are cheap).
 */
#include "harness.h"

#include <dirent.h>
#include <time.h>

#define CYCLES 1000

static int sled_cycles(void) {
  const char *v = getenv("AETHER_SLED_CYCLES");
  int n = v != NULL ? atoi(v) : CYCLES;
  return n > 0 ? n : CYCLES;
}

/* Entries of a /proc/self directory (fd, task), or -1 where there is no /proc. */
static int count_entries(const char *path) {
  DIR *d = opendir(path);
  struct dirent *e;
  int n = 0;
  if (d == NULL) {
    return -1;
  }
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] != '.') {
      n++;
    }
  }
  closedir(d);
  return n - (strcmp(path, "/proc/self/fd") == 0); /* the DIR's own descriptor */
}

static void sleep_ms(long ms) {
  struct timespec t;
  t.tv_sec = ms / 1000;
  t.tv_nsec = (ms % 1000) * 1000000L;
  nanosleep(&t, NULL);
}

/* Check that open descriptors and threads are back to `fds`/`threads` (-1: unknown).
 * Threads a store stopped may take a moment to exit, so wait up to 2 s for them. */
static void check_no_growth(const char *what, int fds, int threads) {
  int now_fds = count_entries("/proc/self/fd");
  int now_threads = count_entries("/proc/self/task");
  int waited;
  for (waited = 0; threads >= 0 && now_threads > threads && waited < 2000; waited += 10) {
    sleep_ms(10);
    now_threads = count_entries("/proc/self/task");
  }
  if (fds >= 0 && now_fds > fds) {
    fprintf(stderr, "%s: %d file descriptors open, %d before the cycles\n", what, now_fds, fds);
    CHECK(now_fds <= fds);
  }
  if (threads >= 0 && now_threads > threads) {
    fprintf(stderr, "%s: %d threads, %d before the cycles\n", what, now_threads, threads);
    CHECK(now_threads <= threads);
  }
}

/* One in-memory cycle: open, save two events and a conflicting third (its aether_error
 * freed), poll one notification, then free the store with the other still queued (odd
 * cycles close first; free alone must release everything too). */
static void memory_cycle(int i) {
  aether_store *s = NULL;
  aether_error *err = NULL;
  aether_event_stored n = {0};
  aether_bytes out = {NULL, 0};
  char e[512], id[32];
  int64_t current = 0;

  memset(&n, 0, sizeof(n));
  CHECK_OK(aether_store_open_memory(4, &s, NULL));
  if (s == NULL) {
    return;
  }
  snprintf(id, sizeof(id), "e%d", i);
  CHECK_OK(aether_save_event(s, STR(event_json(e, sizeof(e), id, "cycle", 1)), NULL, NULL,
                             NULL));
  CHECK_OK(aether_save_event(s, STR(event_json(e, sizeof(e), "second", "cycle", 2)), NULL,
                             NULL, NULL));
  CHECK_STATUS(aether_save_event(s, STR(event_json(e, sizeof(e), "late", "cycle", 2)), &current,
                                 NULL, &err),
               AETHER_VERSION_CONFLICT);
  CHECK(current == 2 && err != NULL);
  aether_error_free(err);
  CHECK_OK(aether_poll_event_stored(s, 0, &n, NULL));
  CHECK(n.version == 1 && n.sequence == 1 && n.event_id_len == strlen(id) &&
        memcmp(n.event_id, id, n.event_id_len) == 0);
  aether_event_stored_clear(&n);
  CHECK_OK(aether_get_events(s, STR("cycle"), 0, &out, NULL));
  CHECK(out.len > 0);
  aether_bytes_free(&out);
  if (i % 2 == 1) {
    CHECK_OK(aether_store_close(s, NULL));
  }
  aether_store_free(s);
}

static void test_memory_open_close_cycles(void) {
  int i, fds, threads;
  memory_cycle(0); /* warm-up: one-time allocations are not growth */
  fds = count_entries("/proc/self/fd");
  threads = count_entries("/proc/self/task");
  for (i = 1; i <= CYCLES && !harness_current_failed; i++) {
    memory_cycle(i);
    if (harness_current_failed) {
      fprintf(stderr, "memory cycle %d failed\n", i);
    }
  }
  check_no_growth("memory cycles", fds, threads);
}

static aether_store *open_sled(const char *dir) {
  aether_sled_options o;
  aether_store *s = NULL;
  aether_error *err = NULL;
  aether_sled_options_default(&o);
  o.cache_capacity_bytes = 1u << 20;
  o.event_stored_capacity = 4;
  CHECK_STATUS_ERR(aether_store_open_sled(dir, &o, &s, &err), AETHER_OK, err);
  return s;
}

/* One sled cycle in `dir`, which holds versions 1..cycle-1 of actor "cycle": reopen, check
 * that the previous cycles' events survived, save version `cycle`, close, free. */
static void sled_cycle(const char *dir, int cycle) {
  aether_store *s = open_sled(dir);
  char e[512], id[32];
  int64_t version = -1;
  uint64_t sequence = 0;
  if (s == NULL) {
    return;
  }
  CHECK_OK(aether_get_latest_version(s, STR("cycle"), &version, NULL));
  CHECK(version == cycle - 1);
  snprintf(id, sizeof(id), "e%d", cycle);
  CHECK_OK(aether_save_event(s, STR(event_json(e, sizeof(e), id, "cycle", cycle)), NULL,
                             &sequence, NULL));
  CHECK(sequence == (uint64_t)cycle);
  CHECK_OK(aether_store_close(s, NULL));
  aether_store_free(s);
}

static void test_sled_reopen_cycles(void) {
  char *dir = make_temp_dir();
  int i, fds, threads, cycles = sled_cycles();
  aether_store *s;
  aether_bytes out = {NULL, 0};
  uint64_t sequence = 0;
  char e[512], id[32], want[700];

  sled_cycle(dir, 1); /* warm-up */
  fds = count_entries("/proc/self/fd");
  threads = count_entries("/proc/self/task");
  for (i = 2; i <= cycles && !harness_current_failed; i++) {
    sled_cycle(dir, i);
    if (harness_current_failed) {
      fprintf(stderr, "sled cycle %d failed\n", i);
    }
  }
  check_no_growth("sled cycles", fds, threads);

  /* Everything every cycle saved is there, in order. */
  s = open_sled(dir);
  if (s != NULL) {
    CHECK_OK(aether_last_sequence(s, &sequence, NULL));
    CHECK(sequence == (uint64_t)cycles);
    snprintf(id, sizeof(id), "e%d", cycles);
    snprintf(want, sizeof(want), "[{\"sequence\":%d,\"event\":%s}]", cycles,
             event_json(e, sizeof(e), id, "cycle", cycles));
    CHECK_OK(aether_read_all(s, (uint64_t)cycles, 10, &out, NULL));
    CHECK_BYTES_EQ(out, want);
    aether_bytes_free(&out);
    aether_store_free(s);
  }
  remove_temp_dir(dir);
}

int main(void) {
  run_test(test_memory_open_close_cycles);
  run_test(test_sled_reopen_cycles);
  return harness_finish();
}
