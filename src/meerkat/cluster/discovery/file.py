"""File discovery (CETS cets_discovery_file): a file listing node addresses.

The file is re-read on every check; tokens are separated by CR, LF or spaces; empty tokens
are ignored. A read error (e.g. the file does not exist yet) fails the check, which is
retried after the error interval.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from .backend import DiscoveredNode


class FileBackend:
    """Each token is `host:port` or `name=host:port`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    async def get_nodes(self) -> list[DiscoveredNode]:
        text = await asyncio.to_thread(self.path.read_text, encoding="utf-8")
        return parse_node_list(text)


def parse_node_list(text: str) -> list[DiscoveredNode]:
    nodes = []
    for token in text.replace("\r", " ").replace("\n", " ").split(" "):
        if not token:
            continue
        name, sep, address = token.partition("=")
        nodes.append(DiscoveredNode(name, address) if sep else DiscoveredNode(None, token))
    return nodes
