/*
 * Allocation wrappers.  All of common/ (and jansson, routed here when the
 * library loads) allocates through these so that tests can fail the Nth
 * allocation and walk every out-of-memory path.
 */
#ifndef TETHER_ALLOC_H
#define TETHER_ALLOC_H

#include <stddef.h>

/* Like malloc/calloc/realloc; return NULL on failure (or injected failure). */
void *tether_malloc(size_t size);
void *tether_calloc(size_t n, size_t size);
/* Overflow-checked n * size; NULL on overflow. */
void *tether_reallocarray(void *p, size_t n, size_t size);
void tether_free(void *p);
/* Returns a copy the caller frees with tether_free(), or NULL. */
char *tether_strdup(const char *s);
/* Wipes size bytes of p (not optimised away), then frees it.  NULL is fine. */
void tether_freezero(void *p, size_t size);

/*
 * Test hook: the nth allocation from now on fails (1 = the next one);
 * 0 disables.  Returns how many allocations the previous setting still
 * had to go: 0 once its failure was injected (or if none was set), so an
 * OOM loop knows when an operation ran to its end without meeting one.
 * Not thread-safe; tests only.
 */
unsigned long tether_alloc_fail_after(unsigned long nth);

#endif /* TETHER_ALLOC_H */
