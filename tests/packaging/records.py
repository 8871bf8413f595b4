#!/usr/bin/env python3
"""Checks the gatelog record of one request, for the packaging tests.

records.py RECORDS_FILE URI ERROR_LOG [PATH=VALUE ...]

Waits up to 5 s for the record whose "uri" is URI (records are written in the log
phase, after the response), then requires: exactly one such record, every line of
the file a JSON object with "schema": "gatelog.v1", each PATH (dotted, list indexes
allowed, -1 = last: attempts.-1.errno_name) equal to VALUE (read as JSON when it
parses, else as a string), and every attempt's "message" printed by NGINX in
ERROR_LOG on a line of the same connection ("*<conn> <message>"). Prints the record.
"""

import json
import sys
import time


def lookup(obj, path):
    for part in path.split("."):
        if isinstance(obj, list):
            obj = obj[int(part)]
        elif isinstance(obj, dict):
            if part not in obj:
                raise KeyError(f"no {part!r} in {path}")
            obj = obj[part]
        else:
            raise KeyError(f"{path}: {part!r} is inside a {type(obj).__name__}")
    return obj


def parse_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def records_for(path, uri):
    found = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    for n, line in enumerate(lines, 1):
        try:
            rec = json.loads(line)
        except ValueError as e:
            sys.exit(f"{path}:{n}: not JSON ({e}): {line[:200]}")
        if not isinstance(rec, dict) or rec.get("schema") != "gatelog.v1":
            sys.exit(f"{path}:{n}: not a gatelog.v1 record: {line[:200]}")
        if rec.get("uri") == uri:
            found.append(rec)
    return found


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    path, uri, error_log = sys.argv[1:4]
    deadline = time.monotonic() + 5
    found = records_for(path, uri)
    while not found and time.monotonic() < deadline:
        time.sleep(0.1)
        found = records_for(path, uri)
    if len(found) != 1:
        sys.exit(f"{path}: {len(found)} records for {uri}, expected 1")
    rec = found[0]
    bad = []
    for spec in sys.argv[4:]:
        key, _, want = spec.partition("=")
        try:
            got = lookup(rec, key)
        except (KeyError, IndexError, ValueError) as e:
            bad.append(f"{key}: {e}")
            continue
        if got != parse_value(want):
            bad.append(f"{key} = {got!r}, expected {want}")
    with open(error_log, encoding="utf-8", errors="replace") as f:
        err_lines = f.read().splitlines()
    for i, att in enumerate(rec.get("attempts", [])):
        msg = att.get("message")
        if msg is None:
            continue
        needle = f"*{rec['conn']} {msg}"
        if not any(needle in line for line in err_lines):
            bad.append(f"attempts.{i}.message not in {error_log} for *{rec['conn']}: {msg}")
    if bad:
        sys.exit("record for " + uri + ": " + "; ".join(bad) + "\n" + json.dumps(rec))
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
