/* The error table's words, generated from the same X-macro as the enum. */
#include <tether/err.h>

const char *tether_strerror(int err)
{
	switch (err) {
	case TETHER_OK:
		return "success";
#define TETHER_ERR_CASE(name, msg)                                             \
	case TETHER_ERR_##name:                                                \
		return msg;
		TETHER_ERR_MAP(TETHER_ERR_CASE)
#undef TETHER_ERR_CASE
	default:
		return "unknown error";
	}
}
