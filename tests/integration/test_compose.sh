#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# docker-compose.yml, Dockerfile, .dockerignore and scripts/systemd/ cannot
# rot.  This is the quick check `make test` runs without Docker (for the
# real thing, containers and all, see tests/compose/run.sh: make
# compose-test).  This test
# (1) reads the compose file with a YAML parser and checks its structure,
#     that every command is a program of the image and every --flag exists
#     in that program's --help; the Dockerfile's stages, packages (the
#     runtime stage must hold the Debian package of every shared library the
#     binaries link), make targets and shipped files; the .dockerignore
#     against the sources the build needs; the systemd units' hardening and
#     flags, and systemd-analyze verify on them;
# (2) emulates `docker build`: copies the context .dockerignore lets
#     through to a clean dir and runs the build stage's commands there;
# (3) runs the compose services from that image tree as written, with only
#     container names mapped to local ones (the redis host -> a unix socket
#     in a temp dir, 0.0.0.0:PORT -> 127.0.0.1:0, service host names ->
#     127.0.0.1, /usr/local/ -> the emulated image), two workers as
#     `--scale worker=2` and the one-shot enqueue, which must end with the
#     mock's truth; then stops the workers as `docker compose down` does.
source "$(dirname "$0")/lib.sh"
ef_setup
ROOT=$EF_ROOT

# ---- a YAML reader: python3 with PyYAML, installed from Debian if missing ----
PY=python3
if ! python3 -c 'import yaml' 2>/dev/null; then
  if /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
    PY=/usr/bin/python3
  elif command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing python3-yaml"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml >/dev/null 2>&1; }
    PY=/usr/bin/python3
  fi
fi
if ! "$PY" -c 'import yaml' 2>/dev/null; then
  fail "YAML reader" "python3-yaml is not installed and could not be installed"
  ef_finish
fi

# ---- (1) static checks ----
"$PY" - "$ROOT" "$BIN" "$EF_TMP" >"$EF_TMP/check.out" 2>"$EF_TMP/check.err" <<'PY'
# Prints "ok NAME" / "FAIL NAME: why" per check, then the build context
# ("CTX FILE"), the build stage's commands ("BUILD <json>") and the plan of
# the local run ("RUN SERVICE <json argv>", "ENV SERVICE <json env>"), mapped.
import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys

import yaml

ROOT, BIN, TMP = sys.argv[1], sys.argv[2], sys.argv[3]
OURS = ("enqueuer", "worker", "statusd", "mockprov")
SHARE = "/usr/local/share/enrichfarm/"

results = []


def ok(name):
    results.append("ok " + name)


def fail(name, why):
    results.append("FAIL %s: %s" % (name, why))


def check(name, cond, why):
    (ok if cond else lambda n: fail(n, why))(name)


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


_helps = {}


def help_flags(prog):
    """The --flags a program's --help names (run once per program)."""
    if prog not in _helps:
        out = subprocess.run([os.path.join(BIN, prog), "--help"], capture_output=True,
                             text=True, timeout=10)
        _helps[prog] = set(re.findall(r"--[a-z][a-z0-9-]*", out.stdout + out.stderr))
    return _helps[prog]


def flags_of(argv):
    return [a.split("=", 1)[0] for a in argv if a.startswith("--")]


# ---- docker-compose.yml ----
try:
    compose = yaml.safe_load(read("docker-compose.yml"))
    ok("compose: valid YAML")
except Exception as e:  # noqa: BLE001 - any parse error is the finding
    fail("compose: valid YAML", str(e))
    print("\n".join(results))
    sys.exit(0)

services = compose.get("services") or {}
for s in ("redis", "statusd", "worker", "mockprov", "enqueue"):
    check("compose: service " + s, s in services, "missing")
known_keys = {"image", "build", "command", "environment", "ports", "volumes", "depends_on",
              "healthcheck", "restart", "stop_signal", "stop_grace_period", "profiles"}
for name, svc in services.items():
    extra = set(svc) - known_keys
    check("compose: %s uses known keys" % name, not extra, "unexpected %s" % sorted(extra))
    cmd = svc.get("command")
    check("compose: %s command is an exec array" % name,
          isinstance(cmd, list) and all(isinstance(a, str) for a in cmd), repr(cmd))
    for dep in (svc.get("depends_on") or {}):
        check("compose: %s depends on a real service (%s)" % (name, dep), dep in services,
              "no service " + dep)
for name, svc in services.items():
    for vol in svc.get("volumes") or []:
        src = vol.split(":", 1)[0]
        check("compose: %s volume %s declared" % (name, src),
              src.startswith((".", "/")) or src in (compose.get("volumes") or {}), "undeclared")

# redis: AOF on
rcmd = services.get("redis", {}).get("command") or []
check("compose: redis has AOF on", "--appendonly" in rcmd and
      rcmd[rcmd.index("--appendonly") + 1] == "yes", repr(rcmd))
check("compose: redis image is Redis 7 on Debian", str(services.get("redis", {}).get("image", ""))
      .startswith("redis:7"), services.get("redis", {}).get("image"))
hc = (services.get("redis", {}).get("healthcheck") or {}).get("test") or []
check("compose: redis healthcheck uses redis-cli", "redis-cli" in hc, repr(hc))

# our image: every other service builds the Dockerfile and names one program
progs = re.search(r"^PROGS\s*:=\s*(.+)$", read("Makefile"), re.M).group(1).split()
dockerfile = read("Dockerfile")
in_image = set(progs) | set(re.findall(r"install[^\n]*\bbin/([a-z]+)\s+/out/usr/local/bin/",
                                       dockerfile))


def default_of(v):
    """compose's ${NAME:-default}: the value with NAME unset."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", str(v))


image_tag = None
REDIS_IMAGE = services.get("redis", {}).get("image")
for name, svc in services.items():
    if svc.get("image") == REDIS_IMAGE:  # redis and the sentinel profile's nodes
        continue
    cmd = svc.get("command") or [""]
    check("compose: %s builds the Dockerfile" % name, svc.get("build") == ".", svc.get("build"))
    if image_tag is None:
        image_tag = svc.get("image")
    check("compose: %s uses the one image" % name, svc.get("image") == image_tag,
          "%s vs %s" % (svc.get("image"), image_tag))
    check("compose: %s runs a program of the image (%s)" % (name, cmd[0]), cmd[0] in in_image,
          "image has %s" % sorted(in_image))
    if cmd[0] in OURS:
        help_ = help_flags(cmd[0])
        for fl in flags_of(cmd):
            check("compose: %s: '%s %s' exists (--help)" % (name, cmd[0], fl), fl in help_,
                  "not in %s --help" % cmd[0])
    for key, val in (svc.get("environment") or {}).items():
        if key == "REDIS_URL":
            check("compose: %s REDIS_URL names the redis service" % name,
                  default_of(val).startswith("redis://redis:6379"), val)
        if key == "MOCK_HOST":
            check("compose: %s MOCK_HOST is the mock service" % name, val in services, val)
        if str(val).startswith(SHARE):
            rel = str(val)[len(SHARE):]
            check("compose: %s %s is shipped (%s)" % (name, key, rel),
                  os.path.isfile(os.path.join(ROOT, rel)), "no " + rel)
    for a in cmd:
        if a.startswith(SHARE):
            rel = a[len(SHARE):]
            check("compose: %s input %s is shipped" % (name, rel),
                  os.path.isfile(os.path.join(ROOT, rel)), "no " + rel)

# the sentinel profile: a replica of redis, three sentinels watching it
prof = {n: s_ for n, s_ in services.items() if "sentinel" in (s_.get("profiles") or [])}
sents = sorted(n for n, s_ in prof.items() if "--sentinel" in " ".join(s_.get("command") or []))
check("compose: profile sentinel has three sentinels", len(sents) == 3, sents)
reps = [n for n, s_ in prof.items() if "--replicaof" in " ".join(s_.get("command") or [])]
check("compose: profile sentinel has a replica of redis's address", len(reps) == 1 and
      "getent hosts redis " in " ".join(prof[reps[0]]["command"]) and
      '--replicaof "$${ip:?redis does not resolve}" 6379' in " ".join(prof[reps[0]]["command"]),
      reps)
for n in sents:
    script = " ".join(prof[n]["command"])
    check("compose: %s monitors the address of redis as mymaster, quorum 2" % n,
          "getent hosts redis " in script and
          "sentinel monitor mymaster $${ip:?redis does not resolve} 6379 2" in script, script[:200])
header = read("docker-compose.yml")
url = re.search(r"FARM_REDIS_URL=(redis\+sentinel://\S+)", header)
check("compose: the header's sentinel URL names the three sentinels",
      url is not None and sorted(re.match(r"redis\+sentinel://([^/]+)/", url.group(1))
                                 .group(1).split(",")) == sents, url and url.group(1))
for n, s_ in services.items():
    if n not in prof:
        check("compose: %s (no profile) depends on no profiled service" % n,
              not set(s_.get("depends_on") or {}) & set(prof), s_.get("depends_on"))

# the worker scales: no fixed name or host port, drains within its stop period
w = services.get("worker", {})
check("compose: worker scales (no container_name, no host ports)",
      "container_name" not in w and not w.get("ports"), "fixed name or ports")
wcmd = w.get("command") or []
grace = int(wcmd[wcmd.index("--grace") + 1]) if "--grace" in wcmd else 30
m = re.fullmatch(r"(\d+)s", str(w.get("stop_grace_period", "10s")))
check("compose: worker stop_grace_period exceeds --grace",
      m is not None and int(m.group(1)) > grace, "%s vs --grace %d" % (w.get("stop_grace_period"), grace))
check("compose: worker stops with SIGTERM", w.get("stop_signal", "SIGTERM") == "SIGTERM",
      w.get("stop_signal"))
sd = services.get("statusd", {})
check("compose: statusd published on 8080",
      any(str(p).endswith(":8080") for p in sd.get("ports") or []), sd.get("ports"))
check("compose: statusd's host port is ${STATUSD_PORT:-8080}, on loopback",
      "127.0.0.1:${STATUSD_PORT:-8080}:8080" in [str(p) for p in sd.get("ports") or []],
      sd.get("ports"))
sdcmd = sd.get("command") or []
if "--listen" in sdcmd and not sdcmd[sdcmd.index("--listen") + 1].startswith("127."):
    check("compose: statusd beyond loopback has --read-only or a token",
          "--read-only" in sdcmd or "--token" in sdcmd or
          "STATUSD_TOKEN" in (sd.get("environment") or {}), "statusd would refuse to start")
eq = services.get("enqueue", {})
check("compose: enqueue is one-shot", str(eq.get("restart", "no")) == "no", eq.get("restart"))
check("compose: enqueue waits for its job", "--wait" in (eq.get("command") or []), "no --wait")
# the provider the enqueue names is in the recipe file the workers load
prov_file = (w.get("environment") or {}).get("FARM_PROVIDERS", "")
if prov_file.startswith(SHARE) and os.path.isfile(os.path.join(ROOT, prov_file[len(SHARE):])):
    with open(os.path.join(ROOT, prov_file[len(SHARE):]), encoding="utf-8") as f:
        recipes = json.load(f)["providers"]
    ecmd = eq.get("command") or []
    p = ecmd[ecmd.index("--provider") + 1] if "--provider" in ecmd else None
    check("compose: enqueue's provider is in the workers' recipes", p in recipes,
          "%s not in %s" % (p, sorted(recipes)))
    used = set()
    for r in recipes.values():
        for st in r["steps"]:
            used |= set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", st["url"]))
    for var in sorted(used):
        check("compose: worker sets ${%s} for its recipes" % var, var in (w.get("environment") or {}),
              "unset")
mk = services.get("mockprov", {}).get("command") or []
mport = mk[mk.index("--listen") + 1].rsplit(":", 1)[1] if "--listen" in mk else "8088"
check("compose: MOCK_PORT is the mock's port",
      str((w.get("environment") or {}).get("MOCK_PORT", mport)) == mport, mport)

# ---- Dockerfile ----
stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", dockerfile, re.M | re.I)
check("dockerfile: multi-stage", len(stages) >= 2, repr(stages))
check("dockerfile: builds on Debian bookworm", stages and stages[0][0] == "debian:bookworm",
      repr(stages[:1]))
check("dockerfile: slim bookworm runtime", stages and stages[-1][0] == "debian:bookworm-slim",
      repr(stages[-1:]))
names = {s[1] for s in stages if s[1]}
for src in re.findall(r"COPY\s+--from=(\S+)", dockerfile):
    check("dockerfile: COPY --from=%s names a stage" % src, src in names, repr(names))
parts = re.split(r"^FROM\s.*$", dockerfile, flags=re.M)
build_part, run_part = parts[1], parts[-1]


def apt_pkgs(text):
    pk = set()
    for m_ in re.finditer(r"apt-get install([^&\n]*)", text.replace("\\\n", " ")):
        pk |= {t for t in m_.group(1).split() if not t.startswith("-")}
    return pk


build_pkgs, run_pkgs = apt_pkgs(build_part), apt_pkgs(run_part)
deps = read("mk/deps.sh")
for pc, deb in re.findall(r"^need_pkg\s+(\S+)\s+(\S+)", deps, re.M):
    if pc == "cmocka":
        continue
    check("dockerfile: build stage installs %s" % deb, deb in build_pkgs, sorted(build_pkgs))
check("dockerfile: build stage has a compiler and pkg-config",
      "pkg-config" in build_pkgs and ("build-essential" in build_pkgs or "gcc" in build_pkgs),
      sorted(build_pkgs))
# the runtime stage holds the package of every shared library the binaries need
needed = set()
for prog in OURS:
    out = subprocess.run(["ldd", os.path.join(BIN, prog)], capture_output=True, text=True).stdout
    elf = subprocess.run(["readelf", "-d", os.path.join(BIN, prog)], capture_output=True,
                         text=True).stdout
    direct = set(re.findall(r"Shared library: \[(.+?)\]", elf))
    for line in out.splitlines():
        m_ = re.match(r"\s*(\S+) => (/\S+)", line)
        if m_ and m_.group(1) in direct:
            needed.add(os.path.realpath(m_.group(2)))
for lib in sorted(needed):
    cands = [lib, lib.replace("/usr/lib/", "/lib/", 1) if lib.startswith("/usr/lib/")
             else "/usr" + lib]
    pkg = None
    for c in cands:
        r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
        if r.returncode == 0:
            pkg = r.stdout.split(":", 1)[0].strip()
            break
    # libc is in every image; the sanitizer runtimes come from a SAN=1 build
    if pkg is None or pkg.startswith(("libc6", "libasan", "libubsan", "liblsan", "libtsan")):
        continue
    check("dockerfile: runtime has %s (%s)" % (pkg, os.path.basename(lib)), pkg in run_pkgs,
          sorted(run_pkgs))
targets = set(re.findall(r"^([a-z][a-z0-9_-]*):", read("Makefile"), re.M))
for line in re.findall(r"\bmake\s+([^\n&\\]*)", dockerfile):
    for tok in line.split():
        if tok.startswith("-") or "=" in tok:
            continue
        check("dockerfile: make target '%s' exists" % tok, tok in targets, "no such target")
for src in re.findall(r"^COPY\s+(?!--from)(\S+)\s", dockerfile, re.M):
    check("dockerfile: COPY source %s exists" % src, os.path.exists(os.path.join(ROOT, src)),
          "missing")
for rel in re.findall(r"install -m \d+ ((?:samples|examples)/\S+(?: (?:samples|examples)/\S+)*)",
                      dockerfile):
    for f in rel.split():
        check("dockerfile: ships %s" % f, os.path.isfile(os.path.join(ROOT, f)), "missing")
env_prov = re.search(r"^ENV\s+FARM_PROVIDERS=(\S+)", dockerfile, re.M)
if env_prov:
    rel = env_prov.group(1)[len(SHARE):] if env_prov.group(1).startswith(SHARE) else ""
    check("dockerfile: FARM_PROVIDERS file is shipped", os.path.isfile(os.path.join(ROOT, rel)),
          env_prov.group(1))

# ---- .dockerignore ----
patterns = [p.strip() for p in read(".dockerignore").splitlines()
            if p.strip() and not p.startswith("#")]


def ignored(path):
    parts_ = path.split("/")
    for pat in patterns:
        pat = pat.rstrip("/")
        for i in range(1, len(parts_) + 1):
            prefix = "/".join(parts_[:i])
            if fnmatch.fnmatch(prefix, pat):
                return True
            if pat.startswith("**/") and fnmatch.fnmatch(parts_[i - 1], pat[3:]):
                return True
    return False


files = subprocess.run(["git", "-C", ROOT, "ls-files", "-co", "--exclude-standard"],
                       capture_output=True, text=True).stdout.split()
need = [f for f in files if re.match(r"(Makefile$|mk/|lib/|enqueuer/|worker/|statusd/|"
                                     r"scripts/|tests/mockprov/|examples/|samples/)", f)]
bad = [f for f in need if ignored(f)]
check("dockerignore: keeps every source the build needs (%d files)" % len(need), not bad,
      "ignores %s" % bad[:5])
for p_ in ("bin/enqueuer", "build/libef.a", ".git/HEAD"):
    check("dockerignore: leaves out %s" % p_, ignored(p_), "would be sent to the build")
context = [f for f in files if not ignored(f) and os.path.isfile(os.path.join(ROOT, f))]

# the build stage's commands (the apt-get lines aside), /out moved into TMP
build_runs = []
for m_ in re.finditer(r"^RUN\s+((?:[^\n]*\\\n)*[^\n]*)", build_part, re.M):
    cmd = m_.group(1).replace("\\\n", " ")
    if "apt-get" in cmd:
        continue
    build_runs.append(re.sub(r"(?<![\w/.])/out(?=/|\s|$)", os.path.join(TMP, "out"), cmd))
check("dockerfile: the build stage has build commands", build_runs, "no RUN without apt-get")
check("dockerfile: the runtime copies /out/usr/local from the build",
      re.search(r"^COPY --from=build /out/usr/local/ /usr/local/", dockerfile, re.M) is not None,
      "the local run maps /usr/local/ to the build's /out/usr/local/")

# ---- systemd units ----
for unit in sorted(os.listdir(os.path.join(ROOT, "scripts/systemd"))):
    if not unit.endswith(".service"):
        continue
    text = read("scripts/systemd/" + unit)
    opts = dict(re.findall(r"^([A-Za-z]+)=(.*)$", text, re.M))
    for k, v in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                 ("Restart", "on-failure"), ("KillSignal", "SIGTERM")):
        check("systemd: %s %s=%s" % (unit, k, v), opts.get(k) == v, opts.get(k))
    check("systemd: %s runs as an unprivileged user" % unit,
          opts.get("DynamicUser") == "yes" or "User" in opts, "no DynamicUser/User")
    check("systemd: %s reads an EnvironmentFile" % unit, "EnvironmentFile" in opts, "none")
    ex = shlex.split(opts.get("ExecStart", ""))
    prog = os.path.basename(ex[0]) if ex else ""
    check("systemd: %s runs one of ours (%s)" % (unit, prog), prog in progs, ex)
    if prog in OURS:
        for fl in flags_of(ex):
            check("systemd: %s: '%s %s' exists (--help)" % (unit, prog, fl),
                  fl in help_flags(prog), "not in --help")
    if prog == "worker":
        g = int(ex[ex.index("--grace") + 1]) if "--grace" in ex else 30
        t = re.fullmatch(r"(\d+)s?", opts.get("TimeoutStopSec", "90"))
        check("systemd: %s TimeoutStopSec exceeds --grace" % unit,
              t is not None and int(t.group(1)) > g, opts.get("TimeoutStopSec"))
        check("systemd: %s is a template on the queue" % unit,
              unit.endswith("@.service") and "%i" in text, "not templated")

print("\n".join(results))

# ---- the plan of the local run: container names mapped to local ones ----
sock = os.path.join(TMP, "compose-redis.sock")


def map_value(v, host=False):
    # compose's ${NAME:-default}: the default, as with NAME unset
    v = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", str(v))
    if v.startswith("redis://redis:6379"):
        return "unix://" + sock
    if host and v in services:  # a service host name (MOCK_HOST)
        return "127.0.0.1"
    if v.startswith("/usr/local/"):
        return os.path.join(TMP, "out/usr/local", v[len("/usr/local/"):])
    return v


for f in context:
    print("CTX " + f)
for cmd in build_runs:
    print("BUILD " + json.dumps(cmd))
for name, svc in services.items():
    if svc.get("profiles"):  # the default `up` only; the profiles need Docker
        continue
    argv = [map_value(a) for a in svc.get("command") or []]
    if name == "redis":
        if "--dir" in argv:
            argv[argv.index("--dir") + 1] = os.path.join(TMP, "redis-data")
        argv += ["--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
                 "--logfile", os.path.join(TMP, "compose-redis.log")]
    if "--listen" in argv:
        argv[argv.index("--listen") + 1] = "127.0.0.1:0"
        argv += ["--port-file", os.path.join(TMP, name + ".port")]
    env = {k: map_value(v, True) for k, v in (svc.get("environment") or {}).items()}
    print("RUN %s %s" % (name, json.dumps(argv)))
    print("ENV %s %s" % (name, json.dumps(env)))
PY
rc=$?
if [ $rc -ne 0 ]; then
  fail "static checks ran" "exit $rc: $(tail -5 "$EF_TMP/check.err")"
fi
while IFS= read -r line; do
  case "$line" in
    "ok "*) ok "${line#ok }" ;;
    "FAIL "*) rest=${line#FAIL }; fail "${rest%%: *}" "${rest#*: }" ;;
  esac
done <"$EF_TMP/check.out"

# systemd's own parser on the units, the binaries mapped to this tree
if command -v systemd-analyze >/dev/null 2>&1; then
  mkdir -p "$EF_TMP/units"
  for u in "$ROOT"/scripts/systemd/*.service; do
    sed "s|/usr/local/bin/|$BIN/|g" "$u" >"$EF_TMP/units/$(basename "$u")"
  done
  for u in "$EF_TMP"/units/*.service; do
    name=$(basename "$u"); inst=${name/@./@default.}
    out=$(cd "$EF_TMP/units" && systemd-analyze verify "$EF_TMP/units/$inst" 2>&1)
    rc=$?
    # ignore complaints about the host's own units, keep the ones about ours
    out=$(printf '%s\n' "$out" | grep -i "enrichfarm" || true)
    if [ $rc -eq 0 ] && [ -z "$out" ]; then ok "systemd: systemd-analyze verify $name"
    else fail "systemd: systemd-analyze verify $name" "rc=$rc $out"; fi
  done
else
  skip "systemd: systemd-analyze verify" "systemd-analyze not installed"
fi

# ---- (2) and (3): the image, built and run here ----
# plan_argv SERVICE -> the argv, one per line;  plan_env SERVICE -> KEY=VALUE lines
plan_argv() { grep "^RUN $1 " "$EF_TMP/check.out" | head -1 | cut -d' ' -f3- |
  "$PY" -c 'import json,sys; [print(a) for a in json.load(sys.stdin)]'; }
plan_env() { grep "^ENV $1 " "$EF_TMP/check.out" | head -1 | cut -d' ' -f3- |
  "$PY" -c 'import json,sys; [print("%s=%s" % kv) for kv in json.load(sys.stdin).items()]'; }
# run_service LOG SERVICE [ENV overrides...]: starts it with its env; pid in EF_LAST_PID
run_service() {
  local log=$1 svc=$2 argv=() envs=() prog
  shift 2
  mapfile -t argv < <(plan_argv "$svc")
  mapfile -t envs < <(plan_env "$svc")
  prog=${argv[0]}
  case "$prog" in redis-server) ;; *) prog="$IMG/bin/$prog" ;; esac
  ef_spawn "$log" env "${envs[@]}" "$@" "$prog" "${argv[@]:1}"
}

if ! grep -q '^RUN worker ' "$EF_TMP/check.out"; then
  fail "local run" "no plan (static checks failed early)"
  ef_finish
fi

# docker build, emulated: the context .dockerignore lets through, copied to a
# clean dir, and the build stage's commands run there; the runtime image's
# /usr/local is then $EF_TMP/out/usr/local, and the services run from it.
CTX="$EF_TMP/context"
IMG="$EF_TMP/out/usr/local"
mkdir -p "$CTX"
sed -n 's/^CTX //p' "$EF_TMP/check.out" | (cd "$ROOT" && tar -cf - -T -) | tar -xf - -C "$CTX"
built=1
while IFS= read -r cmd; do
  cmd=$(printf '%s' "$cmd" | "$PY" -c 'import json,sys; print(json.load(sys.stdin))')
  # a clean environment, as in `docker build`: no BIN, BUILD, SAN or MAKEFLAGS
  if ! (cd "$CTX" && env -i PATH="$PATH" HOME="$EF_TMP" sh -c "$cmd") >>"$EF_TMP/build.log" 2>&1; then
    built=0
    fail "dockerfile: the build stage builds from the context" "$cmd: $(tail -5 "$EF_TMP/build.log")"
    break
  fi
done < <(sed -n 's/^BUILD //p' "$EF_TMP/check.out")
[ $built = 1 ] && ok "dockerfile: the build stage builds from the context"
for p in $(sed -n 's/^RUN [a-z]* //p' "$EF_TMP/check.out" | "$PY" -c '
import json, sys
for l in sys.stdin:
    a = json.loads(l)
    if a and a[0] != "redis-server":
        print(a[0])' | sort -u); do
  check "image: has /usr/local/bin/$p" test -x "$IMG/bin/$p"
done
for f in $(grep -E "^(RUN|ENV) " "$EF_TMP/check.out" | grep -o "$IMG/[^\",]*" | sort -u); do
  check "image: has ${f#"$EF_TMP/out"}" test -e "$f"
done
if [ $built != 1 ] || [ ! -x "$IMG/bin/worker" ]; then
  ef_finish
fi
CSOCK="$EF_TMP/compose-redis.sock"
mkdir -p "$EF_TMP/redis-data"
run_service "$EF_TMP/redis.out" redis
ef_wait_for 10 "redis-cli -s '$CSOCK' PING | grep -q PONG" &&
  ok "redis: starts with the compose flags" || fail "redis: starts with the compose flags" "$(tail -3 "$EF_TMP/compose-redis.log")"
eq "redis: AOF is on" "appendonly yes" "$(redis-cli -s "$CSOCK" CONFIG GET appendonly | paste -sd' ')"
run_service "$EF_TMP/mockprov.log" mockprov
ef_wait_for 10 "test -s '$EF_TMP/mockprov.port'" && ok "mockprov: starts with the compose flags" ||
  fail "mockprov: starts with the compose flags" "$(tail -3 "$EF_TMP/mockprov.log")"
MP=$(cat "$EF_TMP/mockprov.port" 2>/dev/null)
run_service "$EF_TMP/statusd.log" statusd
ef_wait_for 10 "test -s '$EF_TMP/statusd.port'" && ok "statusd: starts with the compose flags" ||
  fail "statusd: starts with the compose flags" "$(tail -3 "$EF_TMP/statusd.log")"
SP=$(cat "$EF_TMP/statusd.port" 2>/dev/null)
WORKER_PIDS=""
for i in 1 2; do   # docker compose up --scale worker=2
  run_service "$EF_TMP/worker$i.log" worker MOCK_PORT="$MP"
  WORKER_PIDS="$WORKER_PIDS $EF_LAST_PID"
done
if ef_wait_for 10 "[ \"\$(redis-cli -s '$CSOCK' ZCARD farm:workers)\" = 2 ]"; then
  ok "worker: two replicas register"
else
  fail "worker: two replicas register" "$(tail -3 "$EF_TMP/worker1.log")"
  ef_finish
fi
run_service "$EF_TMP/enqueue.log" enqueue
enq=$EF_LAST_PID
end=$((SECONDS + 120))
while kill -0 "$enq" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.2; done
kill -0 "$enq" 2>/dev/null && kill "$enq"
wait "$enq"
eq "enqueue: one-shot exits 0 when the job completes" 0 $?
JOB=$(grep -E '^[0-9A-Za-z_-]{10,64}$' "$EF_TMP/enqueue.log" | head -1)
JK="farm:{default}:job:$JOB"
# the truth of the same input, from the mock's catalogue
mapfile -t eargv < <(plan_argv enqueue)
input=${eargv[-1]}
catalog=$(plan_argv mockprov | awk 'p {print; exit} $0 == "--catalog" {p = 1}')
read -r e_upd e_conf e_nf < <("$BIN/mockprov" --expect movies --catalog "${catalog:-1000}" <"$input" |
  awk '{c[$2]++} END {printf "%d %d %d\n", c["updated"], c["conflicts"], c["not_found"]}')
read -r st upd conf nf errs < <(redis-cli -s "$CSOCK" HMGET "$JK" status updated conflicts not_found errors | paste -sd' ')
eq "enqueue: job completed" completed "$st"
if [ "${errs:-0}" = 0 ]; then
  eq "enqueue: counts equal the mock's truth" "$e_upd $e_conf $e_nf" "$upd $conf $nf"
else   # an entity can exhaust its retries on the mock's 2% 5xx: then it is an error
  eq "enqueue: counts equal the truth but for $errs errors" "$((e_upd + e_conf + e_nf))" "$((upd + conf + nf + errs))"
fi
body=$(curl -s "http://127.0.0.1:$SP/jobs/$JOB")
contains "statusd: serves the job" '"status":"completed"' "$body"
# docker compose down: SIGTERM; the workers drain and exit 0 within --grace
for w in $WORKER_PIDS; do kill -TERM "$w" 2>/dev/null; done
for w in $WORKER_PIDS; do
  ef_wait_for 35 "! kill -0 $w"
  wait "$w"
  eq "worker: SIGTERM drains and exits 0 (pid $w)" 0 $?
done
for p in "${EF_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
for p in "${EF_PIDS[@]}"; do ef_wait_for 5 "! kill -0 $p"; wait "$p" 2>/dev/null; done
ef_finish
