"""glibc's heap through ctypes: cap its arenas, give free pages back, read its figures.

Where the C library is not glibc each of these does nothing (or reports None).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

MALLOC_ARENAS = 2
"""glibc heap arenas for the process (glibc's default: up to 8 per core)."""
_M_ARENA_MAX = -8


def limit_arenas() -> None:
    """Fewer glibc arenas: each thread that allocates (the password-hashing threads) would
    otherwise get its own heap, and the memory a connection keeps ends up spread over several
    half-empty heaps (measured: 1.5 KiB more per idle TLS connection). Set before any thread
    starts; MALLOC_ARENA_MAX in the environment, when set, wins."""
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return  # not glibc
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


def trimmer() -> Callable[[], object]:
    """glibc's malloc_trim(0): give free heap pages back to the system (a no-op elsewhere)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return lambda: None  # not glibc
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def figures() -> dict[str, int] | None:
    """glibc's heap in bytes (mallinfo2): in use, the arenas' size, mmapped blocks."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None  # not glibc, or older than 2.33
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return {"heap_used": info.uordblks, "heap_arena": info.arena, "mmapped": info.hblkhd}
