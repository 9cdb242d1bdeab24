// SPDX-License-Identifier: MIT
/*
 * Logging: one line per event on stderr, with the time in ms, the level, the
 * program and its pid, and the message.  `--log-format json` emits the same
 * events as JSON lines.  EF_LOG() checks the level before formatting, so a
 * debug line costs a compare when debug is off.  Never log one line per
 * entity at info level, and never log a secret.
 *
 * The log configuration is set once by main() before the loop starts.
 */
#ifndef EF_LOG_H
#define EF_LOG_H

#include "ef_common.h"

typedef enum { EF_LOG_DEBUG = 0, EF_LOG_INFO, EF_LOG_WARN, EF_LOG_ERROR, EF_LOG_OFF } ef_log_level_t;
typedef enum { EF_LOG_TEXT = 0, EF_LOG_JSON } ef_log_format_t;

void ef_log_init(const char *program, ef_log_level_t level, ef_log_format_t format);
ef_log_level_t ef_log_level(void);
/* Parses "debug|info|warn|error|off" and "text|json"; -1 when unknown. */
int ef_log_level_parse(const char *s, ef_log_level_t *out);
int ef_log_format_parse(const char *s, ef_log_format_t *out);

void ef__log(ef_log_level_t level, const char *fmt, ...) EF_PRINTF(2, 3);

#define EF_LOG(level, ...)                                                                     \
    do {                                                                                       \
        if ((level) >= ef_log_level())                                                         \
            ef__log((level), __VA_ARGS__);                                                     \
    } while (0)

#define ef_debug(...) EF_LOG(EF_LOG_DEBUG, __VA_ARGS__)
#define ef_info(...) EF_LOG(EF_LOG_INFO, __VA_ARGS__)
#define ef_warn(...) EF_LOG(EF_LOG_WARN, __VA_ARGS__)
#define ef_error(...) EF_LOG(EF_LOG_ERROR, __VA_ARGS__)

#endif
