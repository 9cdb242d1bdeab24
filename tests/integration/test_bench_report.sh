#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# The report plumbing of bench/ on fixtures, with no timing and no server:
#   merge:   `bench/run --merge` (b_report_merge) puts a partial run's
#            sections into an earlier report: a section of the same number
#            replaced, a new one in number order before the notes, target
#            rows replaced by their first cell or added at the end of the
#            table, the notes kept and the new ones added (those of an
#            earlier merged run dropped), each new section marked with its
#            run, and a second merge idempotent
#   splice:  b_splice rewrites only what lies between its markers in a
#            document, and leaves a document without them alone
#   monitor: the TCP counting of the Cluster and TLS scenarios
#            (b_monitor_count_tcp, b_monitor_bycmd_tcp) leaves out the
#            benchmark's own unix-socket commands and counts script
#            commands apart
source "$(dirname "$0")/lib.sh"

EF_TMP=$(mktemp -d /tmp/eftest.XXXXXX)
trap 'rm -rf "$EF_TMP"' EXIT
B_ROOT=$EF_ROOT
B_TMP=$EF_TMP
B_RES=$EF_TMP/res
QUICK=1
ONLY=cluster
mkdir -p "$B_RES/md"
# shellcheck source=bench/lib.sh
source "$EF_ROOT/bench/lib.sh"
# shellcheck source=bench/report.sh
source "$EF_ROOT/bench/report.sh"

# ---- merge ----
cat >"$EF_TMP/old.md" <<'EOF'
# Benchmarks

Preamble.

## Machine

| | |
|---|---|
| code | old |

## Targets (../shared/PRODUCT.md, "Bars")

| target | measured (median) | bar | status | cause of the gap |
|---|---|---|---|---|
| Throughput | 0.3 | ≥ 0.7 | **gap** | slow |
| Cluster share | worst 40 % | ≤ 25 % | **gap** | old cause |

Not measured here: something.

## 1. Throughput

old one

## 9. Redis Cluster

old nine

## 11. Later

old eleven

## Notes from this run

- an old note
EOF
cat >"$B_RES/md/90-cluster.md" <<'EOF'
## 9. Redis Cluster: three primaries

new nine
EOF
cat >"$B_RES/md/95-tls.md" <<'EOF'
## 10. TLS

new ten
EOF
printf '| Cluster share | worst 4 %% | ≤ 25 %% | met | - |\n| TLS row | 1.2 | - | met | - |\n' >"$B_RES/targets.md"
printf -- '- a new note\n' >"$B_RES/notes.md"
printf '| code | abc123 |\n| load average at start | 1.00 0.50 0.20 (shared) |\n| load average at the end | 2.00 1.00 0.50 |\n' >"$B_RES/machine.md"
b_report_merge "$EF_TMP/old.md" >"$EF_TMP/new.md"
out=$(cat "$EF_TMP/new.md")
heads=$(grep '^## ' "$EF_TMP/new.md" | tr '\n' '/')
eq "merge: sections in number order, the notes last" \
  '## Machine/## Targets (../shared/PRODUCT.md, "Bars")/## 1. Throughput/## 9. Redis Cluster: three primaries/## 10. TLS/## 11. Later/## Notes from this run/' "$heads"
eq "merge: the old section 9 is gone" 0 "$(grep -c 'old nine' "$EF_TMP/new.md")"
contains "merge: the new section 9 is in" "new nine" "$out"
contains "merge: untouched sections stay" "old eleven" "$out"
contains "merge: the preamble stays" "Preamble." "$out"
eq "merge: each new section says which run it is from" 2 "$(grep -c '^\*From a later run.*bench/run --quick --only cluster --merge.*code abc123.*load average 1.00 0.50 0.20 at its start and 2.00 1.00 0.50 at its end' "$EF_TMP/new.md")"
rows=$(sed -n '/^## Targets/,/^Not measured/p' "$EF_TMP/new.md" | grep '^| [A-Z]' | cut -d'|' -f2,3 | tr '\n' '/')
eq "merge: target row replaced in place, a new one added at the end" \
  ' Throughput | 0.3 / Cluster share | worst 4 % / TLS row | 1.2 /' "$rows"
contains "merge: the table is still followed by its text" "$(printf '| TLS row | 1.2 | - | met | - |\n\nNot measured here')" "$out"
contains "merge: old notes kept" "- an old note" "$out"
contains "merge: new notes added, marked" "- a new note (" "$out"

# merged again with no notes: the earlier merged run's notes go, the main run's stay
: >"$B_RES/notes.md"
b_report_merge "$EF_TMP/new.md" >"$EF_TMP/new3.md"
eq "merge: an earlier merged run's notes are dropped" 0 "$(grep -c 'a new note' "$EF_TMP/new3.md")"
contains "merge: the main run's notes stay" "- an old note" "$(cat "$EF_TMP/new3.md")"
eq "merge: merging twice changes nothing more" "$(grep -v '^\*From a later run' "$EF_TMP/new3.md")" \
  "$(b_report_merge "$EF_TMP/new3.md" | grep -v '^\*From a later run')"
sed -i '/an old note/d' "$EF_TMP/new.md"
eq "merge: a notes section left empty goes" 0 "$(b_report_merge "$EF_TMP/new.md" | grep -c '^## Notes')"

# a report with no notes and no later section: the new ones go at the end
printf '# B\n\n## Targets (x)\n\n| target | m |\n|---|---|\n| A | 1 |\n\n## 1. One\n\none\n' >"$EF_TMP/old2.md"
: >"$B_RES/notes.md"
b_report_merge "$EF_TMP/old2.md" >"$EF_TMP/new2.md"
eq "merge: new sections after the last old one" '## Targets (x)/## 1. One/## 9. Redis Cluster: three primaries/## 10. TLS/' \
  "$(grep '^## ' "$EF_TMP/new2.md" | tr '\n' '/')"
eq "merge: rows added to a table that ends its section" 3 "$(grep -c '^| [A-Z]' "$EF_TMP/new2.md")"

# ---- splice ----
printf 'a\n<!-- bench:x -->\nold 1\nold 2\n<!-- /bench:x -->\nb\n' >"$EF_TMP/doc.md"
printf 'new 1\n' >"$EF_TMP/text"
b_splice "$EF_TMP/doc.md" x "$EF_TMP/text"
eq "splice: only between the markers" "$(printf 'a\n<!-- bench:x -->\nnew 1\n<!-- /bench:x -->\nb')" "$(cat "$EF_TMP/doc.md")"
printf 'a\nb\n' >"$EF_TMP/doc2.md"
if b_splice "$EF_TMP/doc2.md" x "$EF_TMP/text"; then fail "splice: no markers, no change" "returned 0"; else
  eq "splice: no markers, no change" "$(printf 'a\nb')" "$(cat "$EF_TMP/doc2.md")"; fi

# ---- monitor counting over TCP ----
cat >"$EF_TMP/mon.0" <<'EOF'
OK
1700000000.000001 [0 unix:/tmp/x/c0.sock] "HGET" "farm:{q1}:job:J" "status"
1700000000.000002 [0 127.0.0.1:40000] "EVALSHA" "0000000000000000000000000000000000000000" "3"
1700000000.000003 [0 lua] "HSET" "farm:{q1}:r:1" "title" "x"
1700000000.000004 [0 lua] "HSET" "farm:{q1}:r:2" "title" "y"
1700000000.000005 [0 127.0.0.1:40002] "BLMOVE" "a" "b" "RIGHT" "LEFT" "5"
EOF
cat >"$EF_TMP/mon.1" <<'EOF'
OK
1700000000.000006 [0 127.0.0.1:40004] "BLMOVE" "c" "d" "RIGHT" "LEFT" "5"
1700000000.000007 [0 unix:/tmp/x/c1.sock] "INFO" "cpu"
EOF
eq "monitor: TCP commands are ours, lua ones apart, unix ones left out" "3 2" \
  "$(b_monitor_count_tcp "$EF_TMP/mon.0" "$EF_TMP/mon.1")"
by=$(b_monitor_bycmd_tcp 10 "$EF_TMP/mon.0" "$EF_TMP/mon.1")
contains "monitor: by command, over all nodes" "| BLMOVE | 2 | 0.2000 |" "$by"
contains "monitor: a script by its SHA1 (unknown here)" "| EVALSHA (other script) | 1 | 0.1000 |" "$by"
eq "monitor: nothing from the unix socket" 0 "$(printf '%s\n' "$by" | grep -c 'HGET\|INFO')"

ef_finish
