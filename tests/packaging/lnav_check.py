#!/usr/bin/env python3
"""Checks what lnav made of gatelog records, for the packaging tests.

lnav_check.py RECORDS_FILE LNAV_JSON [LNAV_TABLE_JSON]

RECORDS_FILE holds gatelog.v1 records (JSON lines); LNAV_JSON is lnav's
`:write-json-to` output of

  SELECT log_level, status, uri, conn, errno_name, phase, peer, event, tries
    FROM gatelog_v1_records

Every record must come back exactly once, with the values computed here from the
record itself, independently of the format and its SQL: level "error" for a 502 or
504 and "warning" otherwise (a recovered request), errno_name/phase/peer/event of
the last attempt that has an event (the last failed one), tries = len(attempts).

LNAV_TABLE_JSON, when given, is the output of

  SELECT log_level, log_body, uri, conn, errno_name, phase FROM gatelog_v1

the format's own columns: the level as above, the body the record's msg, and
errno_name/phase those of the last attempt with an errno or a phase (the record's
top-level fields, which must agree with its attempts).
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


TABLE_COLUMNS = ["log_level", "log_body", "uri", "conn", "errno_name", "phase"]


def expected_table(rec):
    failed = [a for a in rec["attempts"] if a.get("errno") is not None or a.get("phase") is not None]
    last = failed[-1] if failed else {}
    return {
        "log_level": "error" if rec["status"] in (502, 504) else "warning",
        "log_body": rec["msg"],
        "uri": rec["uri"],
        "conn": rec["conn"],
        "errno_name": last.get("errno_name"),
        "phase": last.get("phase"),
    }


def key(row, columns=COLUMNS):
    return json.dumps([row.get(c) for c in columns], sort_keys=True)


def compare(records, lnav_path, expect, columns):
    want = [expect(r) for r in records]
    with open(lnav_path, encoding="utf-8") as f:
        text = f.read()
    try:
        got = json.loads(text) if text.strip() else []
    except ValueError as e:
        sys.exit(f"lnav output is not JSON ({e}): {text[:500]}")
    if not want:
        sys.exit("no records to check")
    k = lambda row: key(row, columns)  # noqa: E731
    missing = sorted(set(map(k, want)) - set(map(k, got)))
    extra = sorted(set(map(k, got)) - set(map(k, want)))
    if missing or extra or len(got) != len(want):
        sys.exit(
            f"lnav shows {len(got)} rows for {len(want)} records\n"
            f"columns {columns}\nexpected, not shown: {missing}\nshown, not expected: {extra}"
        )
    for row in got:
        print("  " + " ".join(f"{c}={row.get(c)}" for c in columns))


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    compare(records, sys.argv[2], expected, COLUMNS)
    if len(sys.argv) == 4:
        compare(records, sys.argv[3], expected_table, TABLE_COLUMNS)


if __name__ == "__main__":
    main()
