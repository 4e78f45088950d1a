/*
 * Opening the store backends the C tests run against: memory, and sled in both
 * durability modes, each sled store in a fresh temporary directory.
 */
#ifndef AETHER_TEST_BACKENDS_H
#define AETHER_TEST_BACKENDS_H

#include "harness.h"

enum backend { BACKEND_MEMORY, BACKEND_SLED_DURABLE, BACKEND_SLED_BUFFERED, BACKEND_COUNT };

static const char *const backend_names[BACKEND_COUNT] = {"memory", "sled-durable",
                                                          "sled-buffered"};

/* The backend the current test runs against, and its directory (sled). */
static enum backend current_backend;
static char *current_dir;

/* Open the current backend; event_stored_capacity 0 = default. Exits if it fails. */
static inline aether_store *open_backend(size_t event_stored_capacity) {
  aether_store *store = NULL;
  aether_error *err = NULL;
  aether_status status;
  if (current_backend == BACKEND_MEMORY) {
    status = aether_store_open_memory(event_stored_capacity, &store, &err);
  } else {
    aether_sled_options options;
    aether_sled_options_default(&options);
    options.durability = current_backend == BACKEND_SLED_BUFFERED ? AETHER_DURABILITY_BUFFERED
                                                                  : AETHER_DURABILITY_DURABLE;
    options.event_stored_capacity = event_stored_capacity;
    options.cache_capacity_bytes = 8u << 20;
    current_dir = make_temp_dir();
    status = aether_store_open_sled(current_dir, &options, &store, &err);
  }
  if (status != AETHER_OK || store == NULL) {
    fprintf(stderr, "cannot open %s store: %s\n", backend_names[current_backend],
            aether_error_message(err));
    exit(EXIT_FAILURE);
  }
  return store;
}

/* Close (checking the status), free, and remove the directory. */
static inline void close_backend(aether_store *store) {
  CHECK_OK(aether_store_close(store, NULL));
  aether_store_free(store);
  remove_temp_dir(current_dir);
  current_dir = NULL;
}

#endif /* AETHER_TEST_BACKENDS_H */
