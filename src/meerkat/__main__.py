"""`meerkat`: start a node from `meerkat.toml` (or embedded defaults)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .config import ConfigError, load_config
from .db import DatabaseError
from .heap import limit_arenas


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


def main(argv: list[str] | None = None) -> int:
    limit_arenas()
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
