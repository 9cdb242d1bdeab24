// SPDX-License-Identifier: MIT
/*
 * A PostgreSQL connection on a libuv loop (the states and rules are in
 * ef_pg.h).  ef_pg_query() only copies the query and arms a 0 ms timer;
 * the timer connects or sends, then becomes the query's deadline, so no
 * callback ever fires inside ef_pg_query().
 *
 * The socket: libpq may close and reopen it while connecting (another
 * address, a retry without TLS), so each connect step watches it with a
 * fresh uv_poll_t (the old one closed first, which takes the descriptor out
 * of the poller at once); once connected the socket stays until the
 * connection is dropped.
 */
#include "ef_pg.h"

#include "ef_common.h"
#include "ef_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { PG_DOWN = 0, PG_CONNECTING, PG_READY, PG_BUSY } pg_state_t;

typedef struct {
    uv_poll_t h; /* h.data = the ef_pg_t; freed in its close callback */
} pg_poll_t;

struct ef_pg_s {
    uv_loop_t *loop;
    char *conninfo;
    PGconn *conn;
    pg_state_t state;
    pg_poll_t *poll;
    int fd;
    int deadline_ms;
    uv_timer_t timer; /* kick (0 ms), then the query's deadline */
    int kicked;
    /* the outstanding query */
    int outstanding;
    char *sql;
    char **values;
    int nparams;
    ef_pg_cb cb;
    void *arg;
    PGresult *res;
};

static void on_poll(uv_poll_t *h, int status, int events);

static void poll_closed(uv_handle_t *h) {
    free(h);
}

static void unwatch(ef_pg_t *pg) {
    if (pg->poll) {
        uv_close((uv_handle_t *)&pg->poll->h, poll_closed);
        pg->poll = NULL;
    }
    pg->fd = -1;
}

/* Watches the connection's socket for events; fresh = a new handle even if
 * the descriptor number did not change.  0, or -1. */
static int watch(ef_pg_t *pg, int events, int fresh) {
    int fd = PQsocket(pg->conn);
    if (fd < 0)
        return -1;
    if (pg->poll && (fresh || fd != pg->fd))
        unwatch(pg);
    if (!pg->poll) {
        pg->poll = ef_calloc(1, sizeof *pg->poll);
        if (uv_poll_init(pg->loop, &pg->poll->h, fd) != 0) {
            free(pg->poll);
            pg->poll = NULL;
            return -1;
        }
        pg->poll->h.data = pg;
        pg->fd = fd;
    }
    return uv_poll_start(&pg->poll->h, events, on_poll) == 0 ? 0 : -1;
}

static void pending_free(ef_pg_t *pg) {
    free(pg->sql);
    for (int i = 0; pg->values && i < pg->nparams; i++)
        free(pg->values[i]);
    free(pg->values);
    pg->sql = NULL;
    pg->values = NULL;
    pg->nparams = 0;
}

static void drop(ef_pg_t *pg) {
    unwatch(pg);
    if (pg->conn)
        PQfinish(pg->conn);
    pg->conn = NULL;
    pg->state = PG_DOWN;
    PQclear(pg->res);
    pg->res = NULL;
}

/* The first line of libpq's message (it ends with a newline; a hint such
 * as "Is the server running on that host ...?" may follow on its own
 * line), control characters made spaces. */
static void one_line(const char *msg, char *out, size_t cap) {
    size_t n = msg ? strcspn(msg, "\n") : 0;
    while (n > 0 && msg[n - 1] == ' ')
        n--;
    snprintf(out, cap, "%.*s", (int)n, n ? msg : "");
    if (!*out)
        snprintf(out, cap, "connection failed");
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
}

/* Drops the connection and ends the outstanding query with why. */
static void fail(ef_pg_t *pg, const char *why) {
    char msg[EF_ERR_LEN];
    one_line(why, msg, sizeof msg);
    drop(pg);
    uv_timer_stop(&pg->timer);
    pg->kicked = 0;
    pending_free(pg);
    if (pg->outstanding) {
        pg->outstanding = 0;
        pg->cb(pg, NULL, msg, pg->arg); /* may query again or close pg */
    }
}

static void fail_conn(ef_pg_t *pg) {
    char msg[EF_ERR_LEN];
    snprintf(msg, sizeof msg, "%s", pg->conn ? PQerrorMessage(pg->conn) : "connection failed");
    fail(pg, msg);
}

/* The query's answer is complete: hands it over and watches the idle
 * socket for the server closing it. */
static void deliver(ef_pg_t *pg) {
    PGresult *res = pg->res;
    pg->res = NULL;
    uv_timer_stop(&pg->timer);
    pg->outstanding = 0;
    pg->state = PG_READY;
    /* a server shutting down answers, then closes: the next query reconnects */
    if (PQstatus(pg->conn) == CONNECTION_BAD || watch(pg, UV_READABLE, 0) != 0)
        drop(pg);
    pg->cb(pg, res, NULL, pg->arg); /* may query again or close pg: not touched after */
    PQclear(res);
}

static void flush(ef_pg_t *pg) {
    int r = PQflush(pg->conn);
    if (r < 0 || watch(pg, r == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE, 0) != 0)
        fail_conn(pg);
}

static void send_query(ef_pg_t *pg) {
    int ok = PQsendQueryParams(pg->conn, pg->sql, pg->nparams, NULL,
                               (const char *const *)pg->values, NULL, NULL, 0);
    pending_free(pg); /* libpq copied it into its output buffer */
    if (!ok) {
        fail_conn(pg);
        return;
    }
    pg->state = PG_BUSY;
    flush(pg);
}

static void quiet_notice(void *arg, const char *message) {
    (void)arg;
    (void)message;
}

static void connect_step(ef_pg_t *pg, PostgresPollingStatusType ps) {
    switch (ps) {
    case PGRES_POLLING_READING:
        if (watch(pg, UV_READABLE, 1) != 0)
            fail_conn(pg);
        return;
    case PGRES_POLLING_WRITING:
        if (watch(pg, UV_WRITABLE, 1) != 0)
            fail_conn(pg);
        return;
    case PGRES_POLLING_OK:
        PQsetNoticeProcessor(pg->conn, quiet_notice, NULL);
        if (PQsetnonblocking(pg->conn, 1) != 0) {
            fail_conn(pg);
            return;
        }
        send_query(pg);
        return;
    default: fail_conn(pg); return;
    }
}

static void start_connect(ef_pg_t *pg) {
    pg->conn = PQconnectStart(pg->conninfo);
    if (!pg->conn) {
        fail(pg, "out of memory");
        return;
    }
    if (PQstatus(pg->conn) == CONNECTION_BAD) {
        fail_conn(pg);
        return;
    }
    pg->state = PG_CONNECTING;
    connect_step(pg, PGRES_POLLING_WRITING); /* as libpq's manual says to begin */
}

/* Reads what arrived; the answer is complete when PQgetResult says NULL.
 * A failed result is kept over later ones (it says what went wrong). */
static void read_answer(ef_pg_t *pg) {
    if (!PQconsumeInput(pg->conn)) {
        fail_conn(pg);
        return;
    }
    while (!PQisBusy(pg->conn)) {
        PGresult *r = PQgetResult(pg->conn);
        if (!r) {
            if (!pg->res) {
                fail(pg, "no result");
                return;
            }
            deliver(pg);
            return;
        }
        ExecStatusType st = PQresultStatus(pg->res);
        if (pg->res && (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE)) {
            PQclear(r);
        } else {
            PQclear(pg->res);
            pg->res = r;
        }
    }
}

static void on_poll(uv_poll_t *h, int status, int events) {
    ef_pg_t *pg = h->data;
    if (status < 0)
        events = UV_READABLE | UV_WRITABLE; /* libpq finds out what went wrong */
    switch (pg->state) {
    case PG_CONNECTING: connect_step(pg, PQconnectPoll(pg->conn)); return;
    case PG_BUSY:
        if (events & UV_WRITABLE) {
            flush(pg);
            if (pg->state != PG_BUSY)
                return;
        }
        if (events & UV_READABLE)
            read_answer(pg);
        return;
    case PG_READY: {
        /* idle: the server closing the connection (a restart) shows here */
        PGnotify *n;
        if (!PQconsumeInput(pg->conn) || PQstatus(pg->conn) == CONNECTION_BAD) {
            ef_debug("postgres connection closed while idle");
            drop(pg);
            return;
        }
        while ((n = PQnotifies(pg->conn)) != NULL)
            PQfreemem(n);
        return;
    }
    default: unwatch(pg); return;
    }
}

static void on_timer(uv_timer_t *t) {
    ef_pg_t *pg = t->data;
    char why[96];
    if (pg->kicked) {
        pg->kicked = 0;
        uv_timer_start(&pg->timer, on_timer, (uint64_t)pg->deadline_ms, 0);
        if (pg->state == PG_READY)
            send_query(pg);
        else
            start_connect(pg);
        return;
    }
    snprintf(why, sizeof why, "no answer within %d ms (connection dropped)", pg->deadline_ms);
    fail(pg, why);
}

int ef_pg_create(ef_pg_t **out, uv_loop_t *loop, const char *conninfo, int deadline_ms) {
    ef_pg_t *pg = ef_calloc(1, sizeof *pg);
    *out = NULL;
    pg->loop = loop;
    pg->fd = -1;
    pg->deadline_ms = deadline_ms > 0 ? deadline_ms : EF_PG_DEADLINE_DEFAULT_MS;
    pg->conninfo = ef_strdup(conninfo);
    int rc = uv_timer_init(loop, &pg->timer);
    if (rc != 0) {
        free(pg->conninfo);
        free(pg);
        return rc;
    }
    pg->timer.data = pg;
    *out = pg;
    return 0;
}

int ef_pg_query(ef_pg_t *pg, const char *sql, int nparams, const char *const *values, ef_pg_cb cb,
                void *arg) {
    if (!pg || !cb || !sql || nparams < 0 || nparams > 65535)
        return UV_EINVAL;
    if (pg->outstanding)
        return UV_EBUSY;
    pg->sql = ef_strdup(sql);
    pg->nparams = nparams;
    pg->values = nparams ? ef_calloc((size_t)nparams, sizeof *pg->values) : NULL;
    for (int i = 0; i < nparams; i++)
        pg->values[i] = values[i] ? ef_strdup(values[i]) : NULL;
    pg->cb = cb;
    pg->arg = arg;
    pg->outstanding = 1;
    pg->kicked = 1;
    uv_timer_start(&pg->timer, on_timer, 0, 0);
    return 0;
}

int ef_pg_connected(const ef_pg_t *pg) {
    return pg && (pg->state == PG_READY || pg->state == PG_BUSY);
}

static void timer_closed(uv_handle_t *h) {
    ef_pg_t *pg = h->data;
    if (pg->conninfo) {
        volatile char *p = pg->conninfo;
        while (*p)
            *p++ = '\0';
    }
    free(pg->conninfo);
    free(pg);
}

void ef_pg_close(ef_pg_t *pg) {
    if (!pg)
        return;
    drop(pg);
    pending_free(pg);
    pg->outstanding = 0;
    uv_close((uv_handle_t *)&pg->timer, timer_closed);
}

const char *ef_pg_sqlstate(const PGresult *res) {
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

int ef_pg_transient(const PGresult *res) {
    const char *s = ef_pg_sqlstate(res);
    static const char *const codes[] = {
        "40001", /* serialization_failure */
        "40P01", /* deadlock_detected */
        "55P03", /* lock_not_available */
        "57014", /* query_canceled (statement_timeout) */
        "25006", /* read_only_sql_transaction: a standby after a failover */
        NULL};
    if (!*s)
        return 1;                    /* no SQLSTATE: libpq's own failure (the connection) */
    if (strncmp(s, "08", 2) == 0 ||  /* connection_exception */
        strncmp(s, "53", 2) == 0 ||  /* insufficient_resources (too many connections) */
        strncmp(s, "57P", 3) == 0 || /* admin_shutdown, crash_shutdown, cannot_connect_now */
        strncmp(s, "58", 2) == 0)    /* system_error (I/O) */
        return 1;
    for (size_t i = 0; codes[i]; i++)
        if (strcmp(s, codes[i]) == 0)
            return 1;
    return 0;
}

const char *ef_pg_message(const PGresult *res) {
    const char *s = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    return s ? s : "";
}
