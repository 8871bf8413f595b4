#!/usr/bin/env python3
"""Prints the fenced code block of a Markdown file whose first line is HEADER.

docblock.py FILE HEADER

The recipes in docs/pipelines.md name their file on their first line
("# /etc/rsyslog.d/30-gatelog.conf"); the tests run exactly that text, so the
documented configuration is the tested one. Exit 1 when no or several blocks match.
"""

import sys


def blocks(text):
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            yield lines[i + 1 : j]
            i = j + 1
        else:
            i += 1


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    path, header = sys.argv[1:]
    with open(path, encoding="utf-8") as f:
        found = [b for b in blocks(f.read()) if b and b[0].strip() == header]
    if len(found) != 1:
        sys.exit(f"{path}: {len(found)} code blocks start with {header!r}, expected 1")
    print("\n".join(found[0]))


if __name__ == "__main__":
    main()
