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

recipe_prepare syslog-ng-core '# /etc/syslog-ng/conf.d/gatelog.conf'
# The snippet goes into a main file of its own (the version line a conf.d file lacks).
version=$(syslog-ng --version | sed -n 's/^Config version: *//p')
[ -n "$version" ] || fail "cannot read syslog-ng's config version"
{ echo "@version: $version"; cat "$prefix/doc-syslog-ng.conf"; } >"$prefix/syslog-ng.conf"
subst "$prefix/syslog-ng.conf" 'port(514)' "port($port_syslog)"
subst "$prefix/syslog-ng.conf" '/var/log/gatelog/' "$prefix/syslog-ng/"

syslog-ng --syntax-only -f "$prefix/syslog-ng.conf" >"$prefix/syntax.out" 2>&1 \
    || fail "syslog-ng --syntax-only rejects the recipe: $(cat "$prefix/syntax.out")"
start_receiver syslog-ng -F -f "$prefix/syslog-ng.conf" -R "$prefix/syslog-ng/persist" \
    -p "$prefix/syslog-ng/pid" -c "$prefix/syslog-ng/ctl"
recipe_requests
python3 "$here/same_records.py" syslog-ng "$prefix/logs/gatelog.json" "$prefix/syslog-ng/records.json" \
    "$prefix/syslog-ng/summary.log" || fail "syslog-ng recipe check failed"

python3 - "$prefix/logs/gatelog.json" "$prefix/syslog-ng/summary.log" <<'PY' || fail "syslog-ng recipe check failed"
import json, sys
module_path, summary_path = sys.argv[1:]
mod = open(module_path, "rb").read()
summ = open(summary_path, "rb").read()
want = []
for line in mod.decode().splitlines():
    r = json.loads(line)
    want.append(f"{r['status']} {r['method']} {r['uri']} {r['upstream']}")
got = [l.split(" ", 1)[1] for l in summ.decode().splitlines()]
if got != want:
    sys.exit(f"summary lines {got}, expected {want}")
print(f"[syslog-ng] record file equals the module's; summary: {got}", file=sys.stderr)
PY
log "PASS: the documented syslog-ng recipe stores the records unchanged and parses them"
