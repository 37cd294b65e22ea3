/*
 * One error table for the whole tree.  Functions named as actions return 0 or
 * a negative TETHER_ERR_*; tether_strerror() explains a code in words.
 */
#ifndef TETHER_ERR_H
#define TETHER_ERR_H

#define TETHER_ERR_MAP(X)                                                      \
	X(NOMEM, "out of memory")                                              \
	X(INCOMPLETE, "need more data")                                        \
	X(AGAIN, "operation would block")                                      \
	X(FORMAT, "malformed data")                                            \
	X(TOO_LARGE, "message too large")                                      \
	X(TRAILING_DATA, "trailing data after message")                        \
	X(PROTOCOL, "protocol error")                                          \
	X(TLS, "TLS error")                                                    \
	X(SYS, "system call failed")                                           \
	X(INVALID, "invalid argument")                                         \
	X(CRYPTO, "cryptographic failure")                                     \
	X(AUTH, "authentication failed")                                       \
	X(NOT_FOUND, "not found")                                              \
	X(EXISTS, "already exists")                                            \
	X(EXPIRED, "expired")                                                  \
	X(LIMIT, "limit reached")                                              \
	X(DB, "database error")                                                \
	X(CLOSED, "connection closed")                                         \
	X(FINGERPRINT, "relay fingerprint mismatch")                           \
	X(STATE, "operation not valid in this state")                          \
	X(INTERNAL, "internal error")                                          \
	X(PERM, "file permissions too open")                                   \
	X(REFUSED, "refused by the peer")

enum tether_err {
	TETHER_OK = 0,
#define TETHER_ERR_ENUM(name, msg) TETHER_ERR_##name,
	TETHER_ERR_FIRST_ = -1000,
	/* An X-macro expansion is not an expression: kept as written. */
	/* clang-format off */
	TETHER_ERR_MAP(TETHER_ERR_ENUM)
#undef TETHER_ERR_ENUM
	TETHER_ERR_LAST_
	/* clang-format on */
};

/* Returns a static string for any int; never NULL. */
const char *tether_strerror(int err);

#endif /* TETHER_ERR_H */
