// SPDX-License-Identifier: MIT
/*
 * The log writer behind EF_LOG(): formats one line and writes it to stderr
 * in one write(2) so lines from several processes sharing a terminal or a
 * file do not interleave.
 */
#include "ef_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
    char program[32];
    ef_log_level_t level;
    ef_log_format_t format;
} ef_log_cfg = {"enrichfarm", EF_LOG_INFO, EF_LOG_TEXT};

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void ef_log_init(const char *program, ef_log_level_t level, ef_log_format_t format) {
    snprintf(ef_log_cfg.program, sizeof ef_log_cfg.program, "%s", program);
    ef_log_cfg.level = level;
    ef_log_cfg.format = format;
}

ef_log_level_t ef_log_level(void) { return ef_log_cfg.level; }

int ef_log_level_parse(const char *s, ef_log_level_t *out) {
    for (int i = 0; i <= EF_LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (ef_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

int ef_log_format_parse(const char *s, ef_log_format_t *out) {
    if (strcmp(s, "text") == 0)
        *out = EF_LOG_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = EF_LOG_JSON;
    else
        return -1;
    return 0;
}

/* Appends s to buf as the inside of a JSON string, bounded by cap. */
static size_t json_escape(char *buf, size_t pos, size_t cap, const char *s) {
    for (; *s && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[pos++] = '\\';
            buf[pos++] = (char)c;
        } else if (c < 0x20) {
            pos += (size_t)snprintf(buf + pos, cap - pos, "\\u%04x", c);
        } else {
            buf[pos++] = (char)c;
        }
    }
    return pos;
}

void ef__log(ef_log_level_t level, const char *fmt, ...) {
    char msg[2048], line[4608];
    struct timespec ts;
    struct tm tm;
    char tbuf[32];
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%S", &tm);
    if (ef_log_cfg.format == EF_LOG_JSON) {
        n = (size_t)snprintf(line, sizeof line,
                             "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"program\":\"%s\",\"pid\":%d,"
                             "\"msg\":\"",
                             tbuf, ts.tv_nsec / 1000000, level_names[level], ef_log_cfg.program,
                             (int)getpid());
        n = json_escape(line, n, sizeof line - 4, msg);
        line[n++] = '"';
        line[n++] = '}';
        line[n++] = '\n';
    } else {
        n = (size_t)snprintf(line, sizeof line, "%s.%03ldZ %-5s %s[%d] %s\n", tbuf,
                             ts.tv_nsec / 1000000, level_names[level], ef_log_cfg.program,
                             (int)getpid(), msg);
        if (n >= sizeof line) {
            n = sizeof line - 1;
            line[n - 1] = '\n';
        }
    }
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
