#!/usr/bin/env bash
# The lnav format packaging/lnav/gatelog_v1.json and its views (gatelog_v1.sql),
# installed as a user format in a throw-away HOME: `lnav -C` accepts it, and lnav
# reads the format's own samples (real records) with the level, body (msg) and the
# last failed attempt's errno/phase/peer that lnav_check.py computes from each record.
# lnav 0.11 does not compare JSON samples with their "level" itself; this does.
# Fast (no NGINX): part of scripts/test.
set -euo pipefail
test_name=lnav
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
command -v lnav >/dev/null || fail "lnav is not installed (scripts/setup installs it)"

work=$(mktemp -d /tmp/gatelog-lnav.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home/.lnav/formats/gatelog"
cp "$root/packaging/lnav/gatelog_v1.json" "$root/packaging/lnav/gatelog_v1.sql" "$work/home/.lnav/formats/gatelog/"

out=$(HOME=$work/home lnav -C 2>&1) || fail "lnav -C rejected the format: $out"
[ -z "$out" ] || fail "lnav -C complained: $out"

python3 - "$root/packaging/lnav/gatelog_v1.json" "$work/samples.json" <<'EOF'
import json, sys
fmt = json.load(open(sys.argv[1]))["gatelog_v1"]
with open(sys.argv[2], "w") as out:
    for s in fmt["sample"]:
        rec = json.loads(s["line"])
        want = "error" if rec["status"] in (502, 504) else "warning"
        if s.get("level") != want:
            sys.exit(f"sample for {rec['uri']} says level {s.get('level')}, status {rec['status']} means {want}")
        if {"error": "error", "warn": "warning"}.get(rec.get("level")) != want:
            sys.exit(f"sample for {rec['uri']} has record level {rec.get('level')}, status {rec['status']} means {want}")
        out.write(s["line"] + "\n")
EOF

HOME=$work/home lnav -n \
    -c ';SELECT log_level, status, uri, conn, errno_name, phase, peer, event, tries FROM gatelog_v1_records' \
    -c ":write-json-to $work/lnav.json" \
    -c ';SELECT log_level, log_body, uri, conn, errno_name, phase FROM gatelog_v1' \
    -c ":write-json-to $work/table.json" "$work/samples.json" >"$work/lnav.out" 2>&1 \
    || fail "lnav failed: $(cat "$work/lnav.out")"
python3 "$here/lnav_check.py" "$work/samples.json" "$work/lnav.json" "$work/table.json" \
    || fail "lnav's view of the samples is wrong"
log "PASS: lnav -C accepts gatelog_v1; levels and last failed attempts of $(wc -l <"$work/samples.json") real records as expected"
