#!/usr/bin/env python3
"""Summarise a py-spy raw (folded) profile: top functions by self and by inclusive samples."""

from __future__ import annotations

import sys
from collections import Counter


def main(path: str, n: int = 30, grep: str = "") -> None:
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    with open(path) as f:
        lines = f.readlines()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or (grep and grep not in stack):
            continue
        c = int(count)
        total += c
        frames = stack.split(";")
        own[frames[-1]] += c
        for f in set(frames):
            incl[f] += c
    print(f"total samples {total}")
    print("-- self")
    for f, c in own.most_common(n):
        print(f"{100 * c / total:5.1f}% {f}")
    print("-- inclusive")
    for f, c in incl.most_common(n):
        print(f"{100 * c / total:5.1f}% {f}")


if __name__ == "__main__":
    main(
        sys.argv[1],
        int(sys.argv[2]) if len(sys.argv) > 2 else 30,
        sys.argv[3] if len(sys.argv) > 3 else "",
    )
