#!/usr/bin/env bash
# docs/pipelines.md's syslog-ng recipe, exactly as documented (NGINX line and
# /etc/syslog-ng/conf.d/gatelog.conf, with the port and directory made private):
# Debian's syslog-ng, started on its own, receives the module's `gatelog syslog:`
# records over UDP on loopback. Its record file must equal the module's file byte for
# byte, and its summary file must hold, per record, the status, method, URI and
# upstream that the record holds (its JSON parser works on them).
# Installs syslog-ng-core when missing and purges it again. syslog-ng-core conflicts
# with rsyslog: with rsyslog installed the test cannot run and says so (exit 77).
set -euo pipefail
test_name=syslog-ng
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
need_root

if ! installed syslog-ng-core && installed rsyslog; then
    log "SKIPPED: rsyslog is installed and syslog-ng-core would replace it; not run"
    exit 77
fi

"$root/nginx-build/build.sh" addon
so=$root/nginx-build/out/addon-deb-1.22/ngx_http_gatelog_module.so

sng_pid=
cleanup() {
    local rc=$?
    stop_nginx
    if [ -n "$sng_pid" ]; then
        kill -TERM -- "-$sng_pid" 2>/dev/null || true
        wait "$sng_pid" 2>/dev/null || true
    fi
    purge_added_tools
    if [ $rc -eq 0 ]; then rm -rf "$prefix"; else log "kept $prefix for inspection"; fi
    exit $rc
}
new_prefix
trap cleanup EXIT
ensure_tools syslog-ng-core

doc=$root/docs/pipelines.md
port_syslog=$(free_port)
mkdir -p "$prefix/syslog-ng"
python3 "$here/docblock.py" "$doc" '# /etc/syslog-ng/conf.d/gatelog.conf' >"$prefix/doc-syslog-ng.conf"
python3 "$here/docblock.py" "$doc" '# /etc/nginx/conf.d/gatelog.conf' >"$prefix/doc-nginx.conf"

subst() {
    grep -qF -- "$2" "$1" || fail "docs/pipelines.md's block no longer contains [$2]; update this test"
    python3 -c 'import sys; p,a,b=sys.argv[1:]; t=open(p).read(); open(p,"w").write(t.replace(a,b))' "$1" "$2" "$3"
}
# The snippet goes into a main file of its own (the version line a conf.d file lacks).
version=$(syslog-ng --version | sed -n 's/^Config version: *//p')
[ -n "$version" ] || fail "cannot read syslog-ng's config version"
{ echo "@version: $version"; cat "$prefix/doc-syslog-ng.conf"; } >"$prefix/syslog-ng.conf"
subst "$prefix/syslog-ng.conf" 'port(514)' "port($port_syslog)"
subst "$prefix/syslog-ng.conf" '/var/log/gatelog/' "$prefix/syslog-ng/"
cp "$prefix/doc-nginx.conf" "$prefix/gatelog-syslog.conf"
subst "$prefix/gatelog-syslog.conf" 'server=127.0.0.1:514,' "server=127.0.0.1:$port_syslog,"

syslog-ng --syntax-only -f "$prefix/syslog-ng.conf" >"$prefix/syntax.out" 2>&1 \
    || fail "syslog-ng --syntax-only rejects the recipe: $(cat "$prefix/syntax.out")"
setsid syslog-ng -F -f "$prefix/syslog-ng.conf" -R "$prefix/syslog-ng/persist" \
    -p "$prefix/syslog-ng/pid" -c "$prefix/syslog-ng/ctl" >"$prefix/logs/syslog-ng.out" 2>&1 &
sng_pid=$!
sleep 0.5
kill -0 "$sng_pid" 2>/dev/null || fail "syslog-ng exited: $(cat "$prefix/logs/syslog-ng.out")"

write_conf "load_module $so;" "    include $prefix/gatelog-syslog.conf;
    gatelog $prefix/logs/gatelog.json;"
nginx_t || fail "nginx -t: $(cat "$prefix/nginx-t.out")"
start_nginx
expect_status /refused 502
expect_status /retry 200
expect_status /upstream502 502
expect_status /bothdead 502

python3 - "$prefix/logs/gatelog.json" "$prefix/syslog-ng/records.json" "$prefix/syslog-ng/summary.log" <<'PY' || fail "syslog-ng recipe check failed"
import json, sys, time
module_path, records_path, summary_path = sys.argv[1:]

def read(p):
    try:
        return open(p, "rb").read()
    except FileNotFoundError:
        return b""

deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    mod, rec, summ = read(module_path), read(records_path), read(summary_path)
    if mod.count(b"\n") == 4 and rec.count(b"\n") == 4 and summ.count(b"\n") == 4:
        break
    time.sleep(0.1)
n = mod.count(b"\n")
if n != 4:
    sys.exit(f"the module wrote {n} records, expected 4")
if rec != mod:
    sys.exit(f"syslog-ng's record file differs from the module's:\n{rec[:600]!r}\n---\n{mod[:600]!r}")
want = []
for line in mod.decode().splitlines():
    r = json.loads(line)
    want.append(f"{r['status']} {r['method']} {r['uri']} {r['upstream']}")
got = [l.split(" ", 1)[1] for l in summ.decode().splitlines()]
if got != want:
    sys.exit(f"summary lines {got}, expected {want}")
print(f"[syslog-ng] record file equals the module's; summary: {got}", file=sys.stderr)
PY
stop_nginx
log "PASS: the documented syslog-ng recipe stores the records unchanged and parses them"
