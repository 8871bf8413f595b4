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

"$root/nginx-build/build.sh" addon
so=$root/nginx-build/out/addon-deb-1.22/ngx_http_gatelog_module.so

rsyslog_pid=
cleanup() {
    local rc=$?
    stop_nginx
    if [ -n "$rsyslog_pid" ]; then
        kill -TERM -- "-$rsyslog_pid" 2>/dev/null || true
        wait "$rsyslog_pid" 2>/dev/null || true
    fi
    purge_added_tools
    [ $rc -eq 0 ] || log "kept $prefix for inspection"
    exit $rc
}
new_prefix
trap cleanup EXIT
ensure_tools rsyslog

doc=$root/docs/pipelines.md
port_syslog=$(free_port)
mkdir -p "$prefix/rsyslog"
python3 "$here/docblock.py" "$doc" '# /etc/rsyslog.d/30-gatelog.conf' >"$prefix/doc-rsyslog.conf"
python3 "$here/docblock.py" "$doc" '# /etc/nginx/conf.d/gatelog.conf' >"$prefix/doc-nginx.conf"

# subst FILE FROM TO: replace, and fail when FROM is not there (the doc changed).
subst() {
    grep -qF -- "$2" "$1" || fail "docs/pipelines.md's block no longer contains [$2]; update this test"
    python3 -c 'import sys; p,a,b=sys.argv[1:]; t=open(p).read(); open(p,"w").write(t.replace(a,b))' "$1" "$2" "$3"
}
cp "$prefix/doc-rsyslog.conf" "$prefix/rsyslog.conf"
subst "$prefix/rsyslog.conf" 'port="514"' "port=\"$port_syslog\""
subst "$prefix/rsyslog.conf" '/var/log/gatelog/' "$prefix/rsyslog/"
subst "$prefix/rsyslog.conf" 'interval="60"' 'interval="1"'
# A private instance: its own state directory.
printf 'global(workDirectory="%s")\n' "$prefix/rsyslog" | cat - "$prefix/rsyslog.conf" >"$prefix/rsyslog.conf.new"
mv "$prefix/rsyslog.conf.new" "$prefix/rsyslog.conf"
cp "$prefix/doc-nginx.conf" "$prefix/gatelog-syslog.conf"
subst "$prefix/gatelog-syslog.conf" 'server=127.0.0.1:514,' "server=127.0.0.1:$port_syslog,"

rsyslogd -N1 -f "$prefix/rsyslog.conf" >"$prefix/rsyslogd-N1.out" 2>&1 \
    || fail "rsyslogd -N1 rejects the recipe: $(cat "$prefix/rsyslogd-N1.out")"
setsid rsyslogd -n -f "$prefix/rsyslog.conf" -i "$prefix/rsyslog/rsyslogd.pid" \
    >"$prefix/logs/rsyslogd.out" 2>&1 &
rsyslog_pid=$!
sleep 0.5
kill -0 "$rsyslog_pid" 2>/dev/null || fail "rsyslogd exited: $(cat "$prefix/logs/rsyslogd.out")"

write_conf "load_module $so;" "    include $prefix/gatelog-syslog.conf;
    gatelog $prefix/logs/gatelog.json;"
nginx_t || fail "nginx -t: $(cat "$prefix/nginx-t.out")"
start_nginx
expect_status /refused 502
expect_status /retry 200
expect_status /upstream502 502
expect_status /bothdead 502

python3 - "$prefix/logs/gatelog.json" "$prefix/rsyslog/records.json" "$prefix/rsyslog/stats.json" <<'PY' || fail "rsyslog recipe check failed"
import collections, json, sys, time
module_path, rsyslog_path, stats_path = sys.argv[1:]

def read(p):
    try:
        return open(p, "rb").read()
    except FileNotFoundError:
        return b""

deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    mod, rs = read(module_path), read(rsyslog_path)
    if mod.count(b"\n") == 4 and rs.count(b"\n") == 4:
        break
    time.sleep(0.1)
n = mod.count(b"\n")
if n != 4:
    sys.exit(f"the module wrote {n} records, expected 4")
if rs != mod:
    sys.exit(f"rsyslog's file differs from the module's:\n{rs[:600]!r}\n---\n{mod[:600]!r}")
print(f"[rsyslog] {rsyslog_path} equals the module's file ({len(mod)} bytes, 4 records)", file=sys.stderr)

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
stop_nginx
trap - EXIT
kill -TERM -- "-$rsyslog_pid" 2>/dev/null || true
wait "$rsyslog_pid" 2>/dev/null || true
rsyslog_pid=
purge_added_tools
rm -rf "$prefix"
log "PASS: the documented rsyslog recipe stores the records unchanged and counts them"
