/*
 * Which backend a store is: chosen by the form of where it lives (a file
 * path for SQLite today), above the backends, which implement the
 * interface in relay-store.h below them.
 */
#include <stddef.h>

#include <tether/err.h>

#include "relay-store.h"

int relay_store_open(const char *where, struct relay_store **out)
{
	*out = NULL;
	if (where == NULL || where[0] == '\0')
		return TETHER_ERR_INVALID;
	/* A second backend is picked here, by the form of where. */
	return relay_store_sqlite_open(where, out);
}
