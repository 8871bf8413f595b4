#!/usr/bin/env python3
"""Checks that a syslog receiver stored the module's records unchanged.

same_records.py NAME MODULE_FILE COPY_FILE [OTHER_FILE ...]

Waits up to 10 s until MODULE_FILE (the module's own file target), COPY_FILE (the
file the receiver NAME wrote from the module's `syslog:` target) and every
OTHER_FILE (more files the receiver derives from the records) hold 4 lines each,
then requires exactly 4 records from the module and COPY_FILE equal to MODULE_FILE
byte for byte. Used by rsyslog.sh and syslog-ng.sh (four requests, four records).
"""

import sys
import time

RECORDS = 4


def read(p):
    try:
        return open(p, "rb").read()
    except FileNotFoundError:
        return b""


def main():
    name, module_path, copy_path, *others = sys.argv[1:]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mod, copy = read(module_path), read(copy_path)
        if all(read(p).count(b"\n") == RECORDS for p in [module_path, copy_path, *others]):
            break
        time.sleep(0.1)
    n = mod.count(b"\n")
    if n != RECORDS:
        sys.exit(f"the module wrote {n} records, expected {RECORDS}")
    if copy != mod:
        sys.exit(f"{name}'s file differs from the module's:\n{copy[:600]!r}\n---\n{mod[:600]!r}")
    print(f"[{name}] {copy_path} equals the module's file ({len(mod)} bytes, {RECORDS} records)", file=sys.stderr)


if __name__ == "__main__":
    main()
