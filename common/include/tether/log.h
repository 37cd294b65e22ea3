/*
 * Logging to stderr with level, location and error code.  Never log
 * plaintext payloads or secrets.
 */
#ifndef TETHER_LOG_H
#define TETHER_LOG_H

enum tether_log_level {
	TETHER_LOG_ERR = 0,
	TETHER_LOG_WARN,
	TETHER_LOG_INFO,
	TETHER_LOG_DEBUG,
};

void tether_log_set_level(enum tether_log_level level);
/* Prefix such as "tether-relay"; the string must outlive the process. */
void tether_log_set_ident(const char *ident);
void tether_log(const char *file, const char *func, int line,
		enum tether_log_level level, int err, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#define tether_log_err(r, ...)                                                 \
	tether_log(__FILE__, __func__, __LINE__, TETHER_LOG_ERR, (r),          \
		   __VA_ARGS__)
#define tether_log_warn(...)                                                   \
	tether_log(__FILE__, __func__, __LINE__, TETHER_LOG_WARN, 0,           \
		   __VA_ARGS__)
#define tether_log_info(...)                                                   \
	tether_log(__FILE__, __func__, __LINE__, TETHER_LOG_INFO, 0,           \
		   __VA_ARGS__)
#define tether_log_debug(...)                                                  \
	tether_log(__FILE__, __func__, __LINE__, TETHER_LOG_DEBUG, 0,          \
		   __VA_ARGS__)

#endif /* TETHER_LOG_H */
