"""Child processes that die with their parent (Linux `prctl(PR_SET_PDEATHSIG)`).

A parent killed without a chance to clean up (SIGKILL, a test run stopped by a timeout)
leaves its children running: nodes that keep their ports and their cluster links. The
kernel can send a child a signal when its parent goes away; `die_with_parent()` returns
the `preexec_fn` that asks for it, for `subprocess.Popen` and
`asyncio.create_subprocess_exec`. The workers of a `workers = N` supervisor use it, and so
does every test that starts a `meerkat` process.

Hard parts, all from prctl(2):
- "parent" is the *thread* that started the child: start children from a thread that lives
  as long as they should (the main thread, the event loop's thread), not from a pool thread;
- the setting is cleared in the child's own children (a supervisor sets it for its workers)
  and by executing a set-user-ID binary, kept across a plain `execve`;
- the parent may die between `fork` and the `prctl` call: the child then checks that its
  parent is still the one that started it, and otherwise signals itself.
Elsewhere than Linux the `preexec_fn` does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A `preexec_fn`: the child receives `sig` when the calling thread of this process ends.

    Call it in the parent (it looks up prctl and notes the parent's pid there); the returned
    function runs in the child between `fork` and `exec`.
    """
    prctl = _prctl()
    parent = os.getpid()

    def preexec() -> None:
        if prctl is None:
            return
        if prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before prctl: nobody will signal us
            os.kill(os.getpid(), sig)

    return preexec
