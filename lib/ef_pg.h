// SPDX-License-Identifier: MIT
/*
 * One PostgreSQL connection driven by a libuv loop: libpq's non-blocking
 * API (PQconnectStart/PQconnectPoll, PQsendQueryParams, PQflush,
 * PQconsumeInput) with the socket watched by one uv_poll_t.
 *
 * States:
 *   DOWN --query--> CONNECTING --ok--> BUSY --result--> READY --query--> BUSY
 *     ^                 |                |                 |
 *     +--- failure -----+----------------+--- EOF (idle) --+
 *
 * One query at a time: ef_pg_query() while a query is outstanding returns
 * UV_EBUSY.  A query on a DOWN connection connects first.  Every query has a
 * deadline (connect included): when it passes, the connection is dropped
 * and the callback gets the failure.  The callback fires exactly once per
 * accepted query, never from inside ef_pg_query(), with either a result
 * (borrowed: cleared when the callback returns; PGRES_FATAL_ERROR included)
 * or res == NULL and a reason (connection refused, lost, timed out), after
 * which the connection is DOWN and the next query reconnects.  Backoff
 * between attempts is the caller's.  The connection string is a secret: it
 * is never logged, and libpq's messages do not carry its password.
 */
#ifndef EF_PG_H
#define EF_PG_H

#include <libpq-fe.h>
#include <uv.h>

#define EF_PG_DEADLINE_DEFAULT_MS 30000 /* connect plus one query */

typedef struct ef_pg_s ef_pg_t;

/* res: the query's result or NULL; why: NULL with a result, else the
 * connection failure (libpq's words, one line). */
typedef void (*ef_pg_cb)(ef_pg_t *pg, PGresult *res, const char *why, void *arg);

/* Creates a DOWN connection for conninfo (a postgresql:// URL or key=value
 * string; copied, and wiped when freed).  0, or a negative code. */
int ef_pg_create(ef_pg_t **out, uv_loop_t *loop, const char *conninfo, int deadline_ms);

/* Sends sql with nparams text parameters (NULL entries are SQL NULL; the
 * strings are copied by libpq before this returns, or kept while
 * connecting).  0, UV_EBUSY while a query is outstanding, or another
 * negative code (cb never fires then). */
int ef_pg_query(ef_pg_t *pg, const char *sql, int nparams, const char *const *values, ef_pg_cb cb,
                void *arg);

/* Is the connection up (READY or BUSY)? */
int ef_pg_connected(const ef_pg_t *pg);

/* Drops the connection and frees pg once its handles are closed; an
 * outstanding query's callback does not fire.  NULL is accepted. */
void ef_pg_close(ef_pg_t *pg);

/* The SQLSTATE of a failed result ("" when none).  Is it a failure worth
 * retrying later (connection, shutdown, lock, serialization, timeout,
 * read-only standby) rather than one about the data? */
const char *ef_pg_sqlstate(const PGresult *res);
int ef_pg_transient(const PGresult *res);

/* The primary message of a failed result (one line), or "". */
const char *ef_pg_message(const PGresult *res);

#endif
