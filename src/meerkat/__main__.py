"""`meerkat`: start a node from `meerkat.toml` (or embedded defaults)."""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import sys
from pathlib import Path

from .config import ConfigError, load_config
from .db import DatabaseError


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="meerkat", description="Run a Meerkat XMPP node.")
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=None,
        help="configuration file (default: ./meerkat.toml if present, else embedded defaults)",
    )
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    return parser.parse_args(argv)


def _setup_logging(level: str) -> None:
    levels = {
        "none": logging.CRITICAL + 10,
        "emergency": logging.CRITICAL,
        "alert": logging.CRITICAL,
        "critical": logging.CRITICAL,
        "error": logging.ERROR,
        "warning": logging.WARNING,
        "notice": logging.INFO,
        "info": logging.INFO,
        "debug": logging.DEBUG,
        "all": logging.DEBUG,
    }
    logging.basicConfig(
        level=levels.get(level, logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


MALLOC_ARENAS = 2
"""glibc heap arenas for the process (glibc's default: up to 8 per core)."""
_M_ARENA_MAX = -8


def _limit_malloc_arenas() -> None:
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


def main(argv: list[str] | None = None) -> int:
    _limit_malloc_arenas()
    args = _parse_args(argv)
    from .modules import DEFAULT_MODULES, MODULES

    path = args.config
    if path is None and Path("meerkat.toml").exists():
        path = Path("meerkat.toml")
    try:
        config = load_config(path, MODULES, DEFAULT_MODULES)
    except ConfigError as exc:
        print(f"meerkat: invalid configuration {path or '(defaults)'}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    if args.check:
        print("configuration OK")
        return 0
    _setup_logging(config.general.loglevel)
    if config.general.workers > 1:
        from .workers import run_workers, worker_config, worker_index

        index = worker_index()
        if index is None:
            return run_workers(config, path)
        config = worker_config(config, index)
    import uvloop

    from .server import Node

    def banner(node: Node) -> None:
        listening = ", ".join(
            f"c2s {c.host}:{c.bound_port} ({'TLS' if c.direct_tls else 'STARTTLS'})"
            for c in node.c2s_listeners
        )
        http = ", ".join(f"http {h.config.ip_address}:{h.config.port}" for h in node.http_listeners)
        print(
            f"meerkat: node {node.node} serving {', '.join(node.hosts)}; {listening}; {http}",
            file=sys.stderr,
            flush=True,
        )

    try:
        uvloop.run(Node(config).run(banner))
    except DatabaseError as exc:
        print(f"meerkat: database: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"meerkat: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
