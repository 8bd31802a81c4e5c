"""mod_version: XEP-0092 software version of the server."""

from __future__ import annotations

import platform

from kernel_harness import Server

from meerkat.modules.version import VersionConfig
from meerkat.xmpp.errors import error_condition

VERSION = 'xmlns="jabber:iq:version"'


async def ask(config: VersionConfig) -> dict[str, str]:
    server = Server()
    await server.start({"mod_version": config})
    try:
        alice = await server.login("alice")
        reply = await alice.iq(f'<iq type="get" to="localhost"><query {VERSION}/></iq>')
        query = reply.find("query")
        assert query is not None
        return {child.name: child.text for child in query.elements()}
    finally:
        await server.stop()


async def test_the_server_tells_its_name_and_version() -> None:
    answer = await ask(VersionConfig())
    assert answer["name"] == "Meerkat" and answer["version"]
    assert "os" not in answer


async def test_os_info_adds_the_operating_system() -> None:
    answer = await ask(VersionConfig(os_info=True))
    assert answer["os"].startswith(platform.system())


async def test_setting_the_version_is_not_allowed() -> None:
    server = Server()
    await server.start({"mod_version": None})
    try:
        alice = await server.login("alice")
        reply = await alice.iq(f'<iq type="set" to="localhost"><query {VERSION}/></iq>')
        assert error_condition(reply) == "not-allowed"
    finally:
        await server.stop()
