package capi

/*
#include <malloc.h>

// glibc's mallinfo2 (2.33+), looked up weakly so that other C libraries still link;
// the leak test skips when it is missing.
#if defined(__GLIBC__)
#pragma weak mallinfo2
static int goaether_malloc_in_use(size_t *out) {
	if (&mallinfo2 == NULL) {
		return 0;
	}
	struct mallinfo2 mi = mallinfo2();
	*out = mi.uordblks + mi.hblkhd;
	return 1;
}
#else
static int goaether_malloc_in_use(size_t *out) {
	(void)out;
	return 0;
}
#endif
*/
import "C"

// MallocInUse is the number of bytes the C heap (where the library allocates) has in
// use, for leak tests; ok is false where the C library cannot tell.
func MallocInUse() (n uint64, ok bool) {
	var out C.size_t
	if C.goaether_malloc_in_use(&out) == 0 {
		return 0, false
	}
	return uint64(out), true
}
