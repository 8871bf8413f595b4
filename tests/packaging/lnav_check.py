#!/usr/bin/env python3
"""Checks what lnav made of gatelog records, for the packaging tests.

lnav_check.py RECORDS_FILE LNAV_JSON

RECORDS_FILE holds gatelog.v1 records (JSON lines); LNAV_JSON is lnav's
`:write-json-to` output of

  SELECT log_level, status, uri, conn, errno_name, phase, peer, event, tries
    FROM gatelog_v1_records

Every record must come back exactly once, with the values computed here from the
record itself, independently of the format and its SQL: level "error" for a 502 or
504 and "warning" otherwise (a recovered request), errno_name/phase/peer/event of
the last attempt that has an event (the last failed one), tries = len(attempts).
"""

import json
import sys

COLUMNS = ["log_level", "status", "uri", "conn", "errno_name", "phase", "peer", "event", "tries"]


def expected(rec):
    failed = [a for a in rec["attempts"] if a.get("event") is not None]
    last = failed[-1] if failed else {}
    return {
        "log_level": "error" if rec["status"] in (502, 504) else "warning",
        "status": rec["status"],
        "uri": rec["uri"],
        "conn": rec["conn"],
        "errno_name": last.get("errno_name"),
        "phase": last.get("phase"),
        "peer": last.get("peer"),
        "event": last.get("event"),
        "tries": len(rec["attempts"]),
    }


def key(row):
    return json.dumps([row.get(c) for c in COLUMNS], sort_keys=True)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    records_path, lnav_path = sys.argv[1:]
    with open(records_path, encoding="utf-8") as f:
        want = [expected(json.loads(line)) for line in f if line.strip()]
    with open(lnav_path, encoding="utf-8") as f:
        text = f.read()
    try:
        got = json.loads(text) if text.strip() else []
    except ValueError as e:
        sys.exit(f"lnav output is not JSON ({e}): {text[:500]}")
    if not want:
        sys.exit(f"{records_path}: no records to check")
    missing = sorted(set(map(key, want)) - set(map(key, got)))
    extra = sorted(set(map(key, got)) - set(map(key, want)))
    if missing or extra or len(got) != len(want):
        sys.exit(
            f"lnav shows {len(got)} rows for {len(want)} records\n"
            f"columns {COLUMNS}\nexpected, not shown: {missing}\nshown, not expected: {extra}"
        )
    for row in got:
        print("  " + " ".join(f"{c}={row.get(c)}" for c in COLUMNS))


if __name__ == "__main__":
    main()
