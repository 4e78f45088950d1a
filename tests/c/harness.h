/*
 * A minimal test harness for the C tests of libaether: run_test() runs one test
 * function, CHECK* record failures without stopping the test, and harness_finish()
 * prints "N passed, M failed" and gives the exit status.
 */
#ifndef AETHER_TEST_HARNESS_H
#define AETHER_TEST_HARNESS_H

/* mkdtemp and nftw; harness.h must be the first include of a test. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aether.h"

static int harness_passed;
static int harness_failed;
static int harness_current_failed;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
      harness_current_failed = 1;                                                    \
    }                                                                                \
  } while (0)

/* Check that `call` returns `expected`; `err` (an aether_error *, may be NULL) is
 * printed on mismatch and freed either way. */
#define CHECK_STATUS_ERR(call, expected, err)                                        \
  do {                                                                               \
    aether_status got_ = (call);                                                     \
    if (got_ != (expected)) {                                                        \
      fprintf(stderr, "%s:%d: %s\n  returned %d (%s), expected %s (%s)\n", __FILE__, \
              __LINE__, #call, (int)got_, aether_status_str((int)got_), #expected,   \
              aether_error_message(err));                                            \
      harness_current_failed = 1;                                                    \
    }                                                                                \
    aether_error_free(err);                                                          \
    (err) = NULL;                                                                    \
  } while (0)

/* Check that `call` returns `expected` (no error detail requested). */
#define CHECK_STATUS(call, expected)                                                 \
  do {                                                                               \
    aether_status got_ = (call);                                                     \
    if (got_ != (expected)) {                                                        \
      fprintf(stderr, "%s:%d: %s\n  returned %d (%s), expected %s\n", __FILE__,      \
              __LINE__, #call, (int)got_, aether_status_str((int)got_), #expected);  \
      harness_current_failed = 1;                                                    \
    }                                                                                \
  } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, AETHER_OK)

/* Compare an aether_bytes with a C string. */
#define CHECK_BYTES_EQ(bytes, cstr)                                                  \
  do {                                                                               \
    const char *want_ = (cstr);                                                      \
    if ((bytes).len != strlen(want_) ||                                              \
        ((bytes).len > 0 && memcmp((bytes).ptr, want_, (bytes).len) != 0)) {         \
      fprintf(stderr, "%s:%d: bytes differ\n  got:  %.*s\n  want: %s\n", __FILE__,   \
              __LINE__, (int)(bytes).len, (const char *)(bytes).ptr, want_);         \
      harness_current_failed = 1;                                                    \
    }                                                                                \
  } while (0)

/* A pointer and length pair for a C string argument. */
#define STR(s) (const uint8_t *)(s), strlen(s)

static inline void run_test_(const char *name, void (*test)(void)) {
  harness_current_failed = 0;
  test();
  if (harness_current_failed) {
    harness_failed++;
    printf("FAIL %s\n", name);
  } else {
    harness_passed++;
    printf("ok   %s\n", name);
  }
  fflush(stdout);
}

#define run_test(test) run_test_(#test, test)

static inline int harness_finish(void) {
  printf("%d passed, %d failed\n", harness_passed, harness_failed);
  return harness_failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Write a canonical (Go-encoded) event into buf. Returns buf. */
static inline char *event_json(char *buf, size_t cap, const char *id, const char *actor_id,
                        int64_t version) {
  snprintf(buf, cap,
           "{\"id\":\"%s\",\"eventType\":\"OrderPlaced\",\"actorId\":\"%s\",\"version\":%lld,"
           "\"data\":{\"n\":%lld},\"timestamp\":\"2024-01-02T03:04:05Z\"}",
           id, actor_id, (long long)version, (long long)version);
  return buf;
}

static inline int remove_entry_(const char *path, const struct stat *sb, int flag,
                                struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* Create a fresh directory under $TMPDIR (or /tmp); the caller frees the path. */
static inline char *make_temp_dir(void) {
  const char *base = getenv("TMPDIR");
  char *path;
  size_t len;
  if (base == NULL || base[0] == '\0') {
    base = "/tmp";
  }
  len = strlen(base) + sizeof("/aether-test-XXXXXX");
  path = (char *)malloc(len);
  if (path == NULL) {
    abort();
  }
  snprintf(path, len, "%s/aether-test-XXXXXX", base);
  if (mkdtemp(path) == NULL) {
    perror("mkdtemp");
    abort();
  }
  return path;
}

/* Remove a directory tree made by make_temp_dir and free its path. */
static inline void remove_temp_dir(char *path) {
  if (path != NULL) {
    nftw(path, remove_entry_, 16, FTW_DEPTH | FTW_PHYS);
    free(path);
  }
}

#endif /* AETHER_TEST_HARNESS_H */
