#!/usr/bin/env bash
# docs/pipelines.md's rsyslog recipe, exactly as documented (its NGINX line and its
# /etc/rsyslog.d/30-gatelog.conf, with the port, the directory and the stats interval
# made private): Debian's rsyslogd, started on its own, receives the module's
# `gatelog syslog:` records over UDP on loopback. Its file must equal the file the
# module writes for the same requests byte for byte, and its dyn_stats counters must
# equal the statuses, errnos and phases of those records (computed here from them).
# Installs rsyslog when missing and purges it again (GATELOG_TEST_KEEP_TOOLS=1 keeps it).
set -euo pipefail
test_name=rsyslog
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
need_root

recipe_prepare rsyslog '# /etc/rsyslog.d/30-gatelog.conf'
cp "$prefix/doc-rsyslog.conf" "$prefix/rsyslog.conf"
subst "$prefix/rsyslog.conf" 'port="514"' "port=\"$port_syslog\""
subst "$prefix/rsyslog.conf" '/var/log/gatelog/' "$prefix/rsyslog/"
subst "$prefix/rsyslog.conf" 'interval="60"' 'interval="1"'
# A private instance: its own state directory.
printf 'global(workDirectory="%s")\n' "$prefix/rsyslog" | cat - "$prefix/rsyslog.conf" >"$prefix/rsyslog.conf.new"
mv "$prefix/rsyslog.conf.new" "$prefix/rsyslog.conf"

rsyslogd -N1 -f "$prefix/rsyslog.conf" >"$prefix/rsyslogd-N1.out" 2>&1 \
    || fail "rsyslogd -N1 rejects the recipe: $(cat "$prefix/rsyslogd-N1.out")"
start_receiver rsyslogd -n -f "$prefix/rsyslog.conf" -i "$prefix/rsyslog/rsyslogd.pid"
recipe_requests
python3 "$here/same_records.py" rsyslog "$prefix/logs/gatelog.json" "$prefix/rsyslog/records.json" \
    || fail "rsyslog recipe check failed"

python3 - "$prefix/logs/gatelog.json" "$prefix/rsyslog/stats.json" <<'PY' || fail "rsyslog recipe check failed"
import collections, json, sys, time
module_path, stats_path = sys.argv[1:]

def read(p):
    try:
        return open(p, "rb").read()
    except FileNotFoundError:
        return b""

mod = read(module_path)
want = {n: collections.Counter() for n in ("gatelog_status", "gatelog_errno", "gatelog_phase")}
for line in mod.decode().splitlines():
    r = json.loads(line)
    want["gatelog_status"][str(r["status"])] += 1
    failed = [a for a in r["attempts"] if a["event"] is not None]
    if failed and failed[-1]["errno_name"]:
        want["gatelog_errno"][failed[-1]["errno_name"]] += 1
    if failed and failed[-1]["phase"]:
        want["gatelog_phase"][failed[-1]["phase"]] += 1

# dyn_stats buckets are reset after each report: add the reports up.
deadline = time.monotonic() + 10
while True:
    got = {n: collections.Counter() for n in want}
    for line in read(stats_path).decode(errors="replace").splitlines():
        if "{" not in line:
            continue
        st = json.loads(line[line.index("{"):])
        if st.get("origin") == "dynstats.bucket" and st.get("name") in got:
            got[st["name"]].update({k: v for k, v in st["values"].items() if v})
    if got == want or time.monotonic() > deadline:
        break
    time.sleep(0.2)
if got != want:
    sys.exit(f"rsyslog counters {dict(got)}, expected {dict(want)}")
print(f"[rsyslog] counters: " + "; ".join(f"{n} {dict(c)}" for n, c in got.items()), file=sys.stderr)
PY
log "PASS: the documented rsyslog recipe stores the records unchanged and counts them"
