#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The PostgreSQL sink (docs/sinks.md) against a real server: initdb in the
# test's temp dir as an unprivileged user the test creates (runuser), on a
# private 127.0.0.1 port with password authentication, stopped by PID.
# Every table is checked row by row against mockprov's own answers:
#   (a) a clean upsert run;
#   (b) workers SIGKILLed every 2 s through a job (writes redone, none lost);
#   (c) PostgreSQL stopped mid-job for ~3 s and started again (no entity
#       counts as an error, nothing updated is recorded meanwhile, 2 s leases
#       outlive the outage, the table is complete; before it, the table
#       never has fewer rows than the job counts updated);
#   (d) update mode: rows not in the input untouched, a row missing from the
#       table is an error naming it; conflict keep: a non-null column stays;
#   (e) a column type mismatch: an error per entity with PostgreSQL's
#       message, and in a batch with good and bad rows only the bad fail;
#       a missing column or table: every entity an error saying so;
#   a dry run writes nothing; the password is in no log, no Redis key and
#   no statusd answer; workers stop cleanly (no sanitizer report under
#   SAN=1); scripts/demo.sh --postgres fills its movies table.
# Skips where the PostgreSQL server is not installed (Debian postgresql).
source "$(dirname "$0")/lib.sh"

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ] || ! command -v psql >/dev/null 2>&1; then
  skip "postgres sink" "the PostgreSQL server is not installed (Debian postgresql; mk/deps.sh installs it)"
  echo "0 passed, 0 failed"
  exit 0
fi
ef_setup
D=$EF_TMP
ENQ="$BIN/enqueuer"
PGU=""
PGPID=""
PGPW="Pw-$$-s3cret-$RANDOM"
PGDATA=$D/pg/data
PGSOCK=$D/pg/sock
mkdir -p "$D/pg" "$PGSOCK"

# an unprivileged owner for the server when we are root (postgres refuses
# to run as root); removed at exit
as_pg() { if [ -n "$PGU" ]; then runuser -u "$PGU" -- "$@"; else "$@"; fi; }
pg_cleanup() {
  pg_stop
  [ -n "$PGU" ] && userdel "$PGU" 2>/dev/null
  ef_cleanup
}
trap pg_cleanup EXIT
if [ "$(id -u)" = 0 ]; then
  PGU="efpg$$"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PGU" 2>/dev/null ||
    { skip "postgres sink" "cannot create an unprivileged user for the server"; echo "0 passed, 0 failed"; exit 0; }
  chmod 711 "$D"
  chown -R "$PGU" "$D/pg"
fi
PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '%s\n' "$PGPW" >"$D/pg/pw"
chown "${PGU:-$(id -u)}" "$D/pg/pw" 2>/dev/null
if ! as_pg "$PGBIN/initdb" -D "$PGDATA" -U efsink --pwfile="$D/pg/pw" --auth-local=trust \
  --auth-host=scram-sha-256 -E UTF8 --no-instructions >"$D/initdb.log" 2>&1; then
  fail "initdb" "$(tail -5 "$D/initdb.log")"
  ef_finish
fi
rm -f "$D/pg/pw"

pg_start() {
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$D/pg/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGSOCK -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >>"$D/pgctl.log" 2>&1 || return 1
  PGPID=$(head -1 "$PGDATA/postmaster.pid")
}
# stops the server by the postmaster's PID (fast shutdown), bounded
pg_stop() {
  [ -n "$PGPID" ] || return 0
  kill -INT "$PGPID" 2>/dev/null
  for _ in $(seq 1 200); do kill -0 "$PGPID" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$PGPID" 2>/dev/null
  PGPID=""
}
pg_start || { fail "postgres starts" "$(tail -5 "$D/pg/server.log" 2>/dev/null)"; ef_finish; }
psqlq() { psql -X -q -h "$PGSOCK" -p "$PGPORT" -U efsink -d postgres -v ON_ERROR_STOP=1 "$@"; }
psqlq -c "
  CREATE TABLE a (id integer PRIMARY KEY, title text, price numeric(8,2), note text DEFAULT 'n');
  CREATE TABLE b (LIKE a INCLUDING ALL); CREATE TABLE c (LIKE a INCLUDING ALL);
  CREATE TABLE d (LIKE a INCLUDING ALL); CREATE TABLE k (LIKE a INCLUDING ALL);
  CREATE TABLE e (id integer PRIMARY KEY, title integer);
  CREATE TABLE e2 (id integer PRIMARY KEY, title varchar(7));
  CREATE TABLE dry (LIKE a INCLUDING ALL);" >"$D/psql.log" 2>&1 ||
  { fail "tables created" "$(cat "$D/psql.log")"; ef_finish; }
export PG_URL="postgresql://efsink:$PGPW@127.0.0.1:$PGPORT/postgres"

ef_mock_start mock --catalog 5000 || { fail "mockprov starts"; ef_finish; }
# recipe NAME TABLE MODE CONFLICT COLUMNS [RATE]
recipe() {
  local rate=""
  [ -n "${6:-}" ] && rate=", \"rate\": {\"requests\": $6, \"per_seconds\": 1, \"burst\": 20}"
  printf '"%s": {"steps": [{"method": "GET", "url": "http://127.0.0.1:%s/item/{id}"}],
    "extract": {"title": "/title", "price": "/price"}, "timeout_ms": 5000, "retries": 3%s,
    "sink": {"type": "postgres", "url": "${PG_URL}", "table": "%s", "key": "id",
             "columns": %s, "mode": "%s", "conflict": "%s"}}' \
    "$1" "$MOCK_PORT" "$rate" "$2" "$5" "$3" "$4"
}
COLS='{"title": "title", "price": "price"}'
{
  printf '{"providers": {'
  recipe pa a upsert overwrite "$COLS"; printf ','
  recipe pb b upsert overwrite "$COLS" 1500; printf ','
  recipe pc c upsert overwrite "$COLS" 400; printf ','
  recipe pd d update overwrite "$COLS"; printf ','
  recipe pk k upsert keep "$COLS"; printf ','
  recipe pe e upsert overwrite '{"title": "title"}'; printf ','
  recipe pe2 e2 upsert overwrite '{"title": "title"}'; printf ','
  recipe pdry dry upsert overwrite "$COLS"; printf ','
  recipe pnocol e upsert overwrite '{"nocol": "title"}'; printf ','
  recipe pnotab nosuch upsert overwrite '{"title": "title"}'
  printf '}}\n'
} >"$D/p.json"

# truth: "id|title|price" for every id of FILE the mock knows, from the mock
truth() {
  python3 - "$MOCK_PORT" "$1" <<'PY'
import json, sys, urllib.request, urllib.error
port, path = sys.argv[1], sys.argv[2]
for line in open(path):
    i = line.strip()
    try:
        body = json.load(urllib.request.urlopen("http://127.0.0.1:%s/item/%s" % (port, i)))
    except urllib.error.HTTPError:
        continue
    print("%s|%s|%.2f" % (body["id"], body["title"], body["price"]))
PY
}
table() { psqlq -At -c "SELECT id, title, price FROM $1 ORDER BY id" 2>&1; }
counts() { rcli HMGET "farm:{default}:job:$1" updated conflicts not_found errors processed | tr '\n' ' ' | sed 's/ $//'; }
submit() { "$ENQ" --provider "$1" --chunk-size "${3:-50}" ${4:-} "$2" 2>>"$D/enq.log"; }

# a URL the worker cannot use stops it at start, without quoting it
out=$(PG_URL="host=127.0.0.1 password=$PGPW trailing" timeout 10 "$BIN/worker" --providers "$D/p.json" 2>&1)
contains "a malformed sink URL stops the worker with a clear error" \
  "provider 'pa': sink.url: not a connection string libpq accepts" "$out"
case "$out" in *"$PGPW"* | *trailing*) fail "that error quotes nothing of the URL" "$out" ;; *) ok "that error quotes nothing of the URL" ;; esac
out=$(env -u PG_URL timeout 10 "$BIN/worker" --providers "$D/p.json" 2>&1)
contains "an unset \${PG_URL} stops the worker" "sink.url: environment variable PG_URL is not set" "$out"

workers=()
gen=0
start_worker() { # SLOT
  gen=$((gen + 1))
  ef_worker_start "$D/w$1.log.$gen" --providers "$D/p.json" --concurrency 8 \
    --visibility-timeout 2 --id "pgw$1-$gen"
  workers[$1]=$EF_LAST_PID
}
start_worker 0
start_worker 1
start_worker 2
ef_wait_for 10 '[ "$(rcli HLEN farm:providers)" = 10 ]' || fail "workers start" "$(cat "$D"/w0.log.*)"

# ---- (a) a clean run ----
echo "info: ${SECONDS}s: (a) a clean run"
seq 1 600 >"$D/a.ids"
truth "$D/a.ids" >"$D/a.truth"
id=$(submit pa "$D/a.ids")
if ef_wait_job "$id" completed 30; then ok "a: the job completed"; else fail "a: job completed" "$(counts "$id")"; fi
eq "a: counts (updated conflicts not_found errors processed)" "540 0 60 0 600" "$(counts "$id")"
eq "a: the table equals the mock's truth ($(wc -l <"$D/a.truth") rows)" "$(cat "$D/a.truth")" "$(table a)"

# ---- (b) workers SIGKILLed every 2 s ----
echo "info: ${SECONDS}s: (b) workers SIGKILLed every 2 s"
seq 1 4000 >"$D/b.ids"
truth "$D/b.ids" >"$D/b.truth" &
tpid=$!
id=$(submit pb "$D/b.ids" 20)
kills=0
end=$((SECONDS + 40))
while [ $SECONDS -lt $end ] && [ "$(job_field "$id" status)" != completed ]; do
  sleep 2
  s=$((RANDOM % 3))
  kill -9 "${workers[$s]}" 2>/dev/null && kills=$((kills + 1))
  wait "${workers[$s]}" 2>/dev/null
  start_worker "$s"
done
wait "$tpid"
if ef_wait_job "$id" completed 30; then ok "b: the job completed through $kills SIGKILLs"; else fail "b: job completed" "$(counts "$id")"; fi
check "b: at least two workers were killed mid-job" test "$kills" -ge 2
eq "b: counts" "3600 0 400 0 4000" "$(counts "$id")"
[ "$(job_field "$id" errors)" = 0 ] || rcli LRANGE "farm:{default}:job:$id:errors" 0 3
eq "b: the table equals the mock's truth" "$(cat "$D/b.truth")" "$(table b)"

# ---- (c) PostgreSQL restarted mid-job ----
echo "info: ${SECONDS}s: (c) PostgreSQL restarted mid-job"
seq 1 1500 >"$D/c.ids"
truth "$D/c.ids" >"$D/c.truth"
id=$(submit pc "$D/c.ids" 20)
# a row is written before its outcome is recorded: at every instant the
# table holds at least as many rows as the job counts updated (Redis read
# first; rows are never removed)
behind=""
for _ in $(seq 1 8); do
  u=$(job_field "$id" updated)
  r=$(psqlq -At -c "SELECT count(*) FROM c")
  [ "${u:-0}" -le "$r" ] || behind="$behind updated=$u rows=$r;"
  sleep 0.1
done
eq "c: never an outcome recorded before its row (updated <= rows, 8 samples)" "" "$behind"
ef_wait_for 10 '[ "$(job_field "$id" processed)" -ge 100 ]'
pg_stop
sleep 1
down_at=$(job_field "$id" updated)
sleep 2
stalled=$(job_field "$id" updated)
eq "c: no updated entity is recorded while postgres is down (updated stays at $down_at)" "$down_at" "$stalled"
check "c: the outage came mid-job" test "$stalled" -lt 1350
pg_start || fail "c: postgres starts again" "$(tail -5 "$D/pg/server.log")"
if ef_wait_job "$id" completed 40; then ok "c: the job completed after the restart"; else fail "c: job completed" "$(counts "$id")"; fi
eq "c: counts (no entity an error for the outage)" "1350 0 150 0 1500" "$(counts "$id")"
# leases of 2 s outlived a 3 s outage: the waiting worker kept extending them
redelivered=$(rcli HVALS "farm:{default}:job:$id:attempts" | awk '$1 > 1' | wc -l)
nchunks=$(rcli HLEN "farm:{default}:job:$id:attempts")
eq "c: the leases were kept alive through the outage (no chunk of $nchunks delivered twice)" "0 75" "$redelivered $nchunks"
eq "c: the table equals the mock's truth" "$(cat "$D/c.truth")" "$(table c)"
logs=$(cat "$D"/w*.log.*)
contains "c: the outage is logged" "unavailable" "$logs"
contains "c: so is the recovery" "is back after" "$logs"

# ---- (d) update mode and conflict keep ----
echo "info: ${SECONDS}s: (d) update mode and conflict keep"
psqlq -c "INSERT INTO d (id, title, note) SELECT i, NULL, 'mine' FROM generate_series(1, 200, 2) i;
          INSERT INTO d (id, title, price, note) VALUES (901, 'not in the input', 1.50, 'mine'), (903, 'x', NULL, 'mine');
          INSERT INTO k (id, title, price) VALUES (3, 'Kept Title', NULL), (5, NULL, 7.77);" >>"$D/psql.log" 2>&1
before=$(psqlq -At -c "SELECT id, title, price, note FROM d WHERE id > 200 ORDER BY id")
seq 1 200 >"$D/d.ids"
truth "$D/d.ids" >"$D/d.truth"
id=$(submit pd "$D/d.ids")
ef_wait_job "$id" completed 30 || fail "d: job completed" "$(counts "$id")"
# odd ids exist: written (20 of them are not found by the mock: ids ending in 0 are even)
# even ids are missing rows: errors (found ones), not_found (ids ending in 0)
eq "d: counts (missing rows are errors)" "100 0 20 80 200" "$(counts "$id")"
eq "d: the existing rows equal the mock's truth" "$(grep -E '^[0-9]*[13579]\|' "$D/d.truth")" \
  "$(psqlq -At -c "SELECT id, title, price FROM d WHERE id <= 200 ORDER BY id")"
eq "d: rows not in the input untouched" "$before" "$(psqlq -At -c "SELECT id, title, price, note FROM d WHERE id > 200 ORDER BY id")"
eq "d: no row was inserted" "102" "$(psqlq -At -c "SELECT count(*) FROM d")"
eq "d: every column not written is as it was" "102" "$(psqlq -At -c "SELECT count(*) FROM d WHERE note = 'mine'")"
errs=$(rcli LRANGE "farm:{default}:job:$id:errors" 0 -1)
contains "d: a missing row's error names it" 'no row id = 2 in table d (mode update writes existing rows only)' "$errs"
seq 1 6 >"$D/k.ids"
id=$(submit pk "$D/k.ids")
ef_wait_job "$id" completed 30 || fail "k: job completed" "$(counts "$id")"
eq "keep: a non-null column is not overwritten, a null one is filled" \
  "1|Item 1|$(sed -n 's/^1|Item 1|//p' "$D/a.truth") 3|Kept Title|$(sed -n 's/^3|Item 3|//p' "$D/a.truth") 5|Item 5|7.77" \
  "$(psqlq -At -c "SELECT id, title, price FROM k WHERE id IN (1, 3, 5) ORDER BY id" | tr '\n' ' ' | sed 's/ $//')"

# ---- (e) a column type mismatch ----
echo "info: ${SECONDS}s: (e) a column type mismatch"
seq 1 5 >"$D/e.ids"
id=$(submit pe "$D/e.ids")
ef_wait_job "$id" completed 30 || fail "e: job completed" "$(counts "$id")"
eq "e: every entity is an error" "0 0 0 5 5" "$(counts "$id")"
errs=$(rcli LRANGE "farm:{default}:job:$id:errors" 0 -1)
for i in 1 3 5; do
  contains "e: entity $i's error is PostgreSQL's message" \
    "sink: postgres: invalid input syntax for type integer: \\\"Item $i\\\"" \
    "$(printf '%s\n' "$errs" | grep "\"id\":\"$i\"")"
done
eq "e: nothing was written" "0" "$(psqlq -At -c "SELECT count(*) FROM e")"
seq 95 105 >"$D/e2.ids"
id=$(submit pe2 "$D/e2.ids")
ef_wait_job "$id" completed 30 || fail "e2: job completed" "$(counts "$id")"
eq "e: in one batch only the bad rows fail (95..99 fit varchar(7), 101..105 do not)" "5 0 1 5 11" "$(counts "$id")"
eq "e: the good rows of that batch are written" "95 96 97 98 99" "$(psqlq -At -c "SELECT id FROM e2 ORDER BY id" | tr '\n' ' ' | sed 's/ $//')"
contains "e: a bad row's message" "value too long for type character varying(7)" \
  "$(rcli LRANGE "farm:{default}:job:$id:errors" 0 -1 | grep '"id":"104"')"

for c in 'pnocol:sink: table e has no column \"nocol\"' 'pnotab:sink: postgres: relation \"nosuch\" does not exist'; do
  p=${c%%:*} want=${c#*:}
  id=$(submit "$p" "$D/e.ids")
  ef_wait_job "$id" completed 30 || fail "$p: job completed" "$(counts "$id")"
  eq "$p: a table without the column, or no table: every entity an error" "0 0 0 5 5" "$(counts "$id")"
  contains "$p: the error says why" "$want" "$(rcli LRANGE "farm:{default}:job:$id:errors" 0 0)"
done

# ---- dry run, credentials ----
echo "info: ${SECONDS}s: dry run, credentials"
id=$(submit pdry "$D/a.ids" 50 --dry-run)
ef_wait_job "$id" completed 30 || fail "dry: job completed" "$(counts "$id")"
eq "dry run: counts as the real run" "540 0 60 0 600" "$(counts "$id")"
eq "dry run: writes nothing" "0" "$(psqlq -At -c "SELECT count(*) FROM dry")"

ef_spawn "$D/statusd.log" "$BIN/statusd" --listen 127.0.0.1:0 --port-file "$D/sd.port"
ef_wait_for 10 'test -s "$D/sd.port"'
sd="http://127.0.0.1:$(cat "$D/sd.port" 2>/dev/null)"
answers=$(for p in /workers /queues /metrics /providers "/jobs/$id" /jobs; do curl -s "$sd$p"; done)
contains "statusd answered" "pgw0-" "$answers"
# the whole keyspace at once: an uncompressed snapshot
rcli CONFIG SET rdbcompression no >/dev/null
rcli SAVE >/dev/null
dump=$(tr -c '[:print:]' '\n' <"$D/$(rcli CONFIG GET dbfilename | tail -1)" 2>/dev/null)
contains "the snapshot holds the job" "$id" "$dump"
contains "the provider summary names the sink's table" '"table":"a"' "$(rcli HGET farm:providers pa)"
leaks=""
case "$(cat "$D"/w*.log.* "$D/enq.log" "$D/statusd.log")" in *"$PGPW"*) leaks="$leaks logs" ;; esac
case "$dump" in *"$PGPW"*) leaks="$leaks redis" ;; esac
case "$answers" in *"$PGPW"*) leaks="$leaks statusd" ;; esac
eq "the password is in no log, no Redis key, no statusd answer" "" "$leaks"

# a clean stop closes the sinks' connections (and, under SAN=1, leaks nothing)
for p in "${workers[@]}"; do kill -TERM "$p" 2>/dev/null; done
stopped=0
for p in "${workers[@]}"; do
  for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$p" 2>/dev/null || stopped=$((stopped + 1))
done
eq "the workers stop on SIGTERM" "3" "$stopped"
san=$(grep -l -E 'AddressSanitizer|LeakSanitizer|runtime error' "$D"/w*.log.* 2>/dev/null | head -3)
eq "no sanitizer report in any worker log" "" "$san"

# ---- scripts/demo.sh --postgres ----
echo "info: ${SECONDS}s: scripts/demo.sh --postgres"
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  skip "demo --postgres" "no 'postgres' user to run the demo's server as"
else
  out=$(env -u REDIS_URL -u PG_URL BIN="$BIN" DEMO_STATUSD_PORT=$((20000 + $$ % 20000)) DEMO_TIMEOUT_S=60 \
    timeout 120 bash "$EF_ROOT/scripts/demo.sh" --postgres --quiet 2>&1)
  rc=$?
  eq "demo --postgres exits 0" "0" "$rc"
  contains "demo --postgres shows enriched rows with psql" "Scarlet Signal of Lisbon         | 2023 | 2023-08-28" "$out"
  contains "demo --postgres: the table matches the job" "postgres check: exact" "$out"
  contains "demo --postgres stops its server" "postgres=" "$(printf '%s\n' "$out" | grep '^stopped:')"
fi
ef_finish
