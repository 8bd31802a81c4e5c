#!/usr/bin/env python3
"""`meerkat -c CONFIG` with every database statement counted (a benchmark helper).

    countingnode.py CONFIG COUNTS_JSON

Each statement a driver adapter sends (BEGIN and COMMIT included) adds one to a counter keyed
by its SQL text; one statement is one round trip to the server (asyncpg caches prepared
statements per connection, so only a connection's first use of a query costs a second one).
The time each statement took (as the node waited for it) is summed per key as well, under
"time:<key>" in seconds. On SIGUSR1 and at exit the counters are written to COUNTS_JSON
(atomically: the reader deletes the file, signals, and waits for it to reappear).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

COUNTS: Counter[str] = Counter()
TIMES: Counter[str] = Counter()


def _key(sql: str) -> str:
    return " ".join(sql.split())[:90]


def _counted(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def wrapper(self: object, sql: str, *args: Any, **kwargs: Any) -> Any:
        key = _key(sql)
        COUNTS[key] += 1
        started = time.perf_counter()
        try:
            return await method(self, sql, *args, **kwargs)
        finally:
            TIMES["time:" + key] += time.perf_counter() - started

    return wrapper


def install() -> None:
    """Wrap the leaf methods of each adapter (the ones that talk to the server)."""
    from meerkat.db.drivers.mysql import MysqlConnection
    from meerkat.db.drivers.pgsql import PgConnection
    from meerkat.db.drivers.sqlite import SqliteConnection

    # insert_id, script, begin/commit/rollback all end in these.
    for cls, names in (
        (PgConnection, ("execute", "fetchall")),
        (SqliteConnection, ("execute", "fetchall", "script")),
        (MysqlConnection, ("_run",)),
    ):
        for name in names:
            setattr(cls, name, _counted(getattr(cls, name)))


def dump(path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**COUNTS, **TIMES}))
    os.replace(tmp, path)


def main() -> int:
    config, out = sys.argv[1], Path(sys.argv[2])
    install()
    signal.signal(signal.SIGUSR1, lambda *_: dump(out))
    from meerkat.__main__ import main as meerkat_main

    try:
        return meerkat_main(["-c", config])
    finally:
        dump(out)


if __name__ == "__main__":
    sys.exit(main())
