"""End-to-end fixtures: a real Meerkat node in the test's event loop, on real sockets.

* `start_node(**config_overrides)` -> a started `Node` on free loopback ports (STARTTLS c2s
  first, direct TLS second, admin GraphQL over HTTP), with SQLite under a temp data dir,
  stopped after the test. `node` is one with defaults and users alice, bob, carol
  (password "secret").
* `xmpp_client(jid, port)` -> a logged-in slixmpp client (certificate checks off, the
  self-signed certificate is the node's own).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import slixmpp

from meerkat.config import config_from_dict
from meerkat.modules import DEFAULT_MODULES, MODULES
from meerkat.server import Node
from meerkat.xmpp.jid import Jid
from ports import free_port

USERS = ("alice", "bob", "carol")


def node_config(data_dir: Path, **overrides: Any) -> dict[str, Any]:
    general = {"data_dir": str(data_dir), "loglevel": "warning"}
    general.update(overrides.pop("general", {}))
    listen = overrides.pop(
        "listen",
        {
            "c2s": [
                {"port": free_port(), "ip_address": "127.0.0.1", "shaper": "none"},
                {
                    "port": free_port(),
                    "ip_address": "127.0.0.1",
                    "shaper": "none",
                    "tls": {"mode": "tls"},
                },
            ],
            "http": [
                {
                    "port": free_port(),
                    "ip_address": "127.0.0.1",
                    "handlers": {"mongoose_graphql_handler": [{"schema_endpoint": "admin"}]},
                }
            ],
        },
    )
    return {"general": general, "listen": listen, **overrides}


NodeFactory = Callable[..., Awaitable[Node]]


@pytest.fixture
async def start_node(tmp_path: Path) -> AsyncIterator[NodeFactory]:
    nodes: list[Node] = []

    async def start(users: tuple[str, ...] = USERS, **overrides: Any) -> Node:
        data = node_config(tmp_path / f"node{len(nodes)}", **overrides)
        config = config_from_dict(data, MODULES, DEFAULT_MODULES)
        node = Node(config, reraise_hook_errors=True)
        await node.start()
        nodes.append(node)
        assert node.accounts is not None
        for user in users:
            await node.accounts.register(Jid(user, "localhost"), "secret")
        return node

    yield start
    for node in nodes:
        await node.stop(timeout=5)


@pytest.fixture
async def node(start_node: NodeFactory) -> Node:
    return await start_node()


ClientFactory = Callable[..., Awaitable[slixmpp.ClientXMPP]]


@pytest.fixture
async def xmpp_client() -> AsyncIterator[ClientFactory]:
    clients: list[slixmpp.ClientXMPP] = []

    async def connect(
        jid: str, port: int, *, password: str = "secret", direct_tls: bool = False
    ) -> slixmpp.ClientXMPP:
        client = slixmpp.ClientXMPP(jid, password)
        client.ssl_context.check_hostname = False
        client.ssl_context.verify_mode = ssl.CERT_NONE
        client.enable_direct_tls = direct_tls
        client.enable_starttls = not direct_tls
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        client.add_event_handler(
            "session_start", lambda _: started.done() or started.set_result(None)
        )
        client.add_event_handler(
            "failed_auth",
            lambda _: (
                started.done() or started.set_exception(PermissionError("authentication failed"))
            ),
        )
        client.connect("127.0.0.1", port)
        clients.append(client)
        await asyncio.wait_for(started, 10)
        return client

    yield connect
    for client in clients:
        client.disconnect()
    await asyncio.sleep(0)
