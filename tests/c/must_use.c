/*
 * Must NOT compile with -Werror: ignoring the status of a fallible call is a warning
 * (AETHER_MUST_USE). tests/c/run.sh checks that the compiler refuses this file.
 */
#include "aether.h"

int main(void) {
  aether_store_flush(NULL, NULL);
  return 0;
}
