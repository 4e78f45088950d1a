/*
 * Built by tests/c/install_test.sh against an installed libaether using nothing but
 * `pkg-config --cflags --libs aether`, and by tests/c/run.sh against the build tree
 * (-L target/release -Wl,-rpath), which must hold the SONAME link libaether.so.0.
 */
#include <stdio.h>
#include <string.h>

#include <aether.h>

int main(void) {
  static const char event[] = "{\"id\":\"e1\",\"eventType\":\"T\",\"actorId\":\"a\",\"version\":1,"
                              "\"data\":null,\"timestamp\":\"2024-01-02T03:04:05Z\"}";
  aether_store *store = NULL;
  aether_bytes out = {NULL, 0};
  int ok;
  if (strcmp(aether_version(), AETHER_VERSION) != 0) {
    fprintf(stderr, "header %s, library %s\n", AETHER_VERSION, aether_version());
    return 1;
  }
  if (aether_store_open_memory(0, &store, NULL) != AETHER_OK) {
    return 1;
  }
  ok = aether_save_event(store, (const uint8_t *)event, strlen(event), NULL, NULL, NULL) ==
           AETHER_OK &&
       aether_get_events(store, (const uint8_t *)"a", 1, 0, &out, NULL) == AETHER_OK &&
       out.len == strlen(event) + 2 && memcmp(out.ptr + 1, event, strlen(event)) == 0;
  aether_bytes_free(&out);
  aether_store_free(store);
  printf("libaether %s: %s\n", aether_version(), ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
