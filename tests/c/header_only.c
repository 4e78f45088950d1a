/*
 * aether.h is self-contained: this file, compiled as C99 and as C++17 with every
 * warning an error, includes nothing else, and includes the header twice.
 */
#include "aether.h"
#include "aether.h"

/* The ABI the header promises. */
typedef char status_is_int_sized[sizeof(aether_status) == sizeof(int) ? 1 : -1];
typedef char bytes_is_two_words[sizeof(aether_bytes) == 2 * sizeof(size_t) ? 1 : -1];

int main(void) {
  aether_bytes bytes = {NULL, 0};
  aether_sled_options options = {AETHER_DURABILITY_DURABLE, 0, 0, 0};
  (void)bytes;
  (void)options;
  return AETHER_OK + AETHER_VERSION_MAJOR * 0 + (int)(sizeof(AETHER_VERSION) - sizeof(AETHER_VERSION));
}
