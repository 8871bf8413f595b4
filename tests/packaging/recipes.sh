#!/usr/bin/env bash
# The logic of the recipes in docs/pipelines.md whose shipper cannot be installed here
# (no Debian package, vendor repositories out of reach), run exactly as documented on
# the real records that packaging/lnav/gatelog_v1.json carries as samples:
#   Vector  the VRL program (/etc/vector/gatelog.vrl), run by VRL itself through the
#           vrl-python bindings (PyPI): time, level, errno_name/phase/peer of the last
#           failed attempt, Vector's host kept, the record nested; a line that is not
#           JSON is an error (Vector's remap then drops and reroutes it).
#   Alloy   the JMESPath expressions of stage.json, evaluated by Python's jmespath
#           (the same JMESPath specification Alloy's Go library implements).
# Expected values are computed here from each record. The Python packages go into a
# virtualenv under target/ (made once).
set -euo pipefail
test_name=recipes
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

venv=$root/target/recipes-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import vrl_python, jmespath' 2>/dev/null; then
    log "making $venv (vrl-python, jmespath from PyPI)"
    python3 -m venv "$venv" >/dev/null || fail "python3 -m venv failed (install python3-venv)"
    "$venv/bin/pip" install -q vrl-python jmespath || fail "pip install vrl-python jmespath failed"
fi

doc=$root/docs/pipelines.md
work=$(mktemp -d /tmp/gatelog-recipes.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 "$here/docblock.py" "$doc" '# /etc/vector/gatelog.vrl' >"$work/gatelog.vrl"
python3 "$here/docblock.py" "$doc" '// /etc/alloy/gatelog.alloy' >"$work/gatelog.alloy"

"$venv/bin/python" - "$root/packaging/lnav/gatelog_v1.json" "$work/gatelog.vrl" "$work/gatelog.alloy" <<'PY' || fail "a recipe gives wrong values"
import datetime, json, re, sys
import jmespath
import vrl_python

fmt_path, vrl_path, alloy_path = sys.argv[1:]
lines = [s["line"] for s in json.load(open(fmt_path))["gatelog_v1"]["sample"]]
# The same record in another zone: the offset must be applied.
shifted = json.loads(lines[0])
shifted["time"] = shifted["time"][:23] + "+01:00"
lines.append(json.dumps(shifted))

def expected(rec):
    failed = [a for a in rec["attempts"] if a["event"] is not None]
    last = failed[-1] if failed else {}
    utc = datetime.datetime.fromisoformat(rec["time"]).astimezone(datetime.timezone.utc)
    return {
        "level_vector": "error" if rec["status"] in (502, 504) else "warn",
        "errno_name": last.get("errno_name"),
        "phase": last.get("phase"),
        "peer": last.get("peer"),
        "utc": utc,
    }

bad = []
# --- Vector: the VRL program --------------------------------------------------------
program = open(vrl_path).read()
diag = vrl_python.VRLRuntime.check_syntax(program)
if diag is not None:
    sys.exit(f"VRL does not compile: {diag}")
rt = vrl_python.VRLRuntime()
for line in lines:
    rec = json.loads(line)
    want = expected(rec)
    ev = rt.execute(program, {"message": line, "host": "web-1", "file": "/var/log/nginx/gatelog.json"}).processed_event
    got_ts = datetime.datetime.strptime(str(ev["timestamp"]), "%Y-%m-%d %H:%M:%S.%f %Z").replace(tzinfo=datetime.timezone.utc)
    checks = {
        "host": (ev.get("host"), "web-1"),
        "message removed": ("message" in ev, False),
        "gatelog": (ev.get("gatelog"), rec),
        "level": (ev.get("level"), want["level_vector"]),
        "errno_name": (ev.get("errno_name"), want["errno_name"] or "none"),
        "phase": (ev.get("phase"), want["phase"] or "none"),
        "peer": (ev.get("peer"), want["peer"] or "none"),
        "timestamp": (got_ts, want["utc"]),
    }
    for k, (g, w) in checks.items():
        if g != w:
            bad.append(f"Vector {rec['uri']} {rec['time']}: {k} = {g!r}, expected {w!r}")
try:
    rt.execute(program, {"message": "not a record", "host": "web-1"})
    bad.append("Vector: a line that is not JSON went through without an error")
except Exception as e:
    print(f"[recipes] Vector: a non-JSON line is an error ({type(e).__name__})", file=sys.stderr)

# --- Alloy: the JMESPath expressions of stage.json --------------------------------------
alloy = open(alloy_path).read()
block = re.search(r"expressions\s*=\s*\{(.*?)\n\s*\}", alloy, re.S)
if not block:
    sys.exit("no stage.json expressions in the Alloy recipe")
exprs = {}
for m in re.finditer(r'^\s*(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?\s*$', block.group(1), re.M):
    exprs[m.group(1)] = m.group(2).replace('\\"', '"').replace("\\\\", "\\")
if set(exprs) != {"time", "status", "upstream", "level", "errno_name", "phase"}:
    sys.exit(f"unexpected stage.json expressions: {sorted(exprs)}")
for line in lines:
    rec = json.loads(line)
    want = expected(rec)
    got = {k: jmespath.search(e, rec) for k, e in exprs.items()}
    checks = {
        "time": rec["time"], "status": rec["status"], "upstream": rec["upstream"],
        "level": want["level_vector"], "errno_name": want["errno_name"], "phase": want["phase"],
    }
    for k, w in checks.items():
        if got[k] != w:
            bad.append(f"Alloy {rec['uri']}: {k} = {got[k]!r}, expected {w!r}")

if bad:
    sys.exit("\n".join(bad))
print(f"[recipes] Vector VRL and Alloy JMESPath right on {len(lines)} real records", file=sys.stderr)
PY
log "PASS"
