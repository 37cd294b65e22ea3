/*
 * Allocation wrappers with a fail-the-Nth-allocation hook, so tests can walk
 * every out-of-memory path (curl's torture tests).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include <tether/alloc.h>

static unsigned long fail_countdown;

static int should_fail(void)
{
	if (fail_countdown == 0)
		return 0;
	return --fail_countdown == 0;
}

/*
 * jansson allocates through the same wrappers, so that an OOM test also
 * fails the allocations of JSON it parses or builds.  Both end in malloc()
 * and free(), so memory from either side may be freed by the other.
 */
__attribute__((constructor)) static void route_jansson(void)
{
	json_set_alloc_funcs(tether_malloc, tether_free);
}

unsigned long tether_alloc_fail_after(unsigned long nth)
{
	unsigned long left = fail_countdown;

	fail_countdown = nth;
	return left;
}

void *tether_malloc(size_t size)
{
	if (should_fail())
		return NULL;
	return malloc(size == 0 ? 1 : size);
}

void *tether_calloc(size_t n, size_t size)
{
	if (should_fail())
		return NULL;
	if (n == 0 || size == 0)
		n = size = 1;
	return calloc(n, size);
}

void *tether_reallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	if (should_fail())
		return NULL;
	return realloc(p, n * size == 0 ? 1 : n * size);
}

void tether_free(void *p)
{
	free(p);
}

char *tether_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = tether_malloc(n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

void tether_freezero(void *p, size_t size)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, size);
	free(p);
}
