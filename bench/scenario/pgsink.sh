# SPDX-License-Identifier: MIT
# Scenario 9, the PostgreSQL sink (docs/sinks.md): PG_N entities through
# one worker (--concurrency 64, chunk size 50, mockprov with zero latency)
# with the recipe's sink upserting into a table of a private PostgreSQL
# server, next to the same job without a sink (the worker's extra CPU per
# entity) and to `\copy` of the same rows into an empty table of the same
# shape (the limit for loading those rows).  Sourced by bench/run; skipped
# with a note where the PostgreSQL server is not installed.

pg_bench_start() {
  local bin d="$B_TMP/pg"
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$bin" ] && [ -x "$bin/initdb" ] && command -v psql >/dev/null || return 1
  mkdir -p "$d/sock"
  PG_AS=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || return 1
    PG_AS=(runuser -u postgres --)
    chmod 711 "$B_TMP"
    chown -R postgres "$d"
  fi
  "${PG_AS[@]}" "$bin/initdb" -D "$d/data" -U bench --auth=trust -E UTF8 --no-instructions \
    >"$B_TMP/pg.initdb.log" 2>&1 || return 1
  # the defaults but fsync: a benchmark of the sink, not of the disk
  "${PG_AS[@]}" "$bin/pg_ctl" -D "$d/data" -l "$d/server.log" -w -t 30 \
    -o "-c listen_addresses= -k $d/sock -p 5432 -c fsync=off" start >"$B_TMP/pg.ctl.log" 2>&1 || return 1
  PG_PID=$(head -1 "$d/data/postmaster.pid")
  b_track "$PG_PID"
  export PG_URL="postgresql:///postgres?host=$d/sock&port=5432&user=bench"
}
pgq() { psql -X -q -At -d "$PG_URL" -v ON_ERROR_STOP=1 "$@"; }

scn_pgsink() {
  local rep ids="$B_TMP/ids.pg" t0 t1 rows sink_cpu plain_cpu
  if ! pg_bench_start; then
    note "pgsink: no PostgreSQL server could be started (Debian postgresql; see $B_TMP/pg.*.log): skipped"
    return 0
  fi
  seq 1 "$PG_N" >"$ids"
  pgq -c "CREATE TABLE items (id integer PRIMARY KEY, title text)" \
    -c "CREATE TABLE loaded (id integer PRIMARY KEY, title text)" >/dev/null
  b_recipe "$B_TMP/r.plain.json" "http://127.0.0.1:$MOCK_PORT"
  cat >"$B_TMP/r.sink.json" <<EOF
{"providers": {"items": {
   "steps": [{"method": "GET", "url": "http://127.0.0.1:$MOCK_PORT/item/{id}"}],
   "extract": {"title": "/title"}, "timeout_ms": 5000, "retries": 3,
   "sink": {"type": "postgres", "url": "\${PG_URL}", "table": "items", "key": "id",
            "columns": {"title": "title"}, "mode": "upsert"}}}}
EOF
  for rep in $(seq 1 "$REPS"); do
    pgq -c "TRUNCATE items" >/dev/null
    if b_farm_run "$B_TMP/r.sink.json" 1 "$CONC" "$ids"; then
      rows=$(pgq -c "SELECT count(*) FROM items")
      b_put pg.sink.eps "$FR_EPS"
      b_put pg.sink.rows "$(awk -v e="$FR_EPS" -v r="$rows" -v n="$FR_N" 'BEGIN { printf "%.0f", e * r / n }')"
      b_put pg.sink.wcpu "$FR_WCPU_US"
      sink_cpu=$FR_WCPU_US
    fi
    if b_farm_run "$B_TMP/r.plain.json" 1 "$CONC" "$ids"; then
      b_put pg.plain.eps "$FR_EPS"
      b_put pg.plain.wcpu "$FR_WCPU_US"
      plain_cpu=$FR_WCPU_US
      [ -n "${sink_cpu:-}" ] && b_put pg.extra.wcpu "$(awk -v a="$sink_cpu" -v b="$plain_cpu" 'BEGIN { printf "%.2f", a - b }')"
    fi
    # the limit: the same rows loaded with \copy into an empty table
    pgq -c "\\copy items TO '$B_TMP/pg.rows.csv' WITH (FORMAT csv)" -c "TRUNCATE loaded" >/dev/null
    rows=$(wc -l <"$B_TMP/pg.rows.csv")
    t0=$(date +%s%N)
    pgq -c "\\copy loaded FROM '$B_TMP/pg.rows.csv' WITH (FORMAT csv)" >/dev/null
    t1=$(date +%s%N)
    b_put pg.copy.rows "$(awk -v r="$rows" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", r * 1e9 / (b - a) }')"
    b_log "rep $rep pgsink: sink $(b_med pg.sink.rows) rows/s, copy $(b_med pg.copy.rows) rows/s, extra worker cpu $(b_med pg.extra.wcpu) us/entity"
    sink_cpu=""
  done
  {
    echo "## 14. The PostgreSQL sink"
    echo
    echo "\`bench/run --only pgsink\`: $PG_N entities (ids 1..$PG_N; every tenth is a 404, so"
    echo "$((PG_N - PG_N / 10)) rows), one worker, \`--concurrency $CONC\`, chunk size 50, mockprov with"
    echo "zero latency, the recipe's sink upserting \`title\` into \`items (id integer primary key,"
    echo "title text)\` of a private PostgreSQL server ($(psql --version | awk '{print $3}'), unix socket,"
    echo "\`fsync=off\`) on the same machine; one multi-row statement per acknowledgement batch"
    echo "(50 entities), written before the batch is recorded. Rows/s = rows written x"
    echo "entities/s of the job / entities. The same job without a sink in the same repetition"
    echo "gives the worker's extra CPU per entity (user + system, both runs, difference). The"
    echo "limit: \`psql \\copy\` of the same rows (exported from the sink's table) into an empty"
    echo "table of the same shape, timed around psql (its start included)."
    echo
    echo "| figure | median | min | max | runs |"
    echo "|---|---|---|---|---|"
    b_row "sink: rows written per second" pg.sink.rows
    b_row "sink: job entities/s" pg.sink.eps
    b_row "same job without a sink: entities/s" pg.plain.eps
    b_row "\\copy of the same rows: rows per second (the limit)" pg.copy.rows
    b_row "worker CPU per entity with the sink (µs)" pg.sink.wcpu
    b_row "worker CPU per entity without a sink (µs)" pg.plain.wcpu
    b_row "the sink's extra worker CPU per entity (µs)" pg.extra.wcpu
    echo
    local r
    r=$(b_div "$(b_med pg.sink.rows)" "$(b_med pg.copy.rows)")
    echo "Sink rows/s / \\copy rows/s: $(b_fmt "$r"). The sink's rate here is the farm's own"
    echo "(provider requests and Redis acks included); \\copy only loads rows it already has."
    echo "The job with a sink is slower than without because each batch's record waits for its"
    echo "write (one more round trip, to PostgreSQL, per 50 entities), not for the worker's CPU."
    echo
  } >"$B_RES/md/990-pgsink.md"
  return 0
}
