"""Processes that tests start die with the test process (see `meerkat.pdeathsig`).

A test run that is killed (a CI timeout, SIGKILL, a closed terminal) runs no teardown: every
`meerkat` node it started would keep running, holding its ports and its cluster links.
Start node processes with these two functions; the kernel then kills them with the process
that started them. Call them from the event loop's thread (the child's death is tied to
the thread that starts it).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meerkat.pdeathsig import die_with_parent


def popen(argv: Sequence[str], **kw: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen(argv, **kw)` for a child that gets SIGKILL when we die."""
    return subprocess.Popen(argv, preexec_fn=die_with_parent(), **kw)


async def create_subprocess_exec(*argv: str, **kw: Any) -> asyncio.subprocess.Process:
    """`asyncio.create_subprocess_exec(*argv, **kw)` for a child that dies with us."""
    return await asyncio.create_subprocess_exec(*argv, preexec_fn=die_with_parent(), **kw)


def is_running(pid: int) -> bool:
    """True while process `pid` exists and is not a zombie (dead, waiting to be reaped:
    an orphan's new parent may be slow to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def children_of(pid: int) -> list[int]:
    """The pids whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)
