"""An independent client over WebSocket: @xmpp/client 0.14 under Node (tests/js), beside
another @xmpp/client on TCP."""

from __future__ import annotations

import asyncio
import json

import pytest

from meerkat.modules import DEFAULT_MODULES

from .conftest import NodeFactory
from .test_sasl2 import JS_DIR, js_client_or_skip, run_js
from .test_websocket import ws_listen, ws_url


async def websocket_flags(executable: str) -> list[str]:
    """@xmpp/websocket uses the global WebSocket: Node 22 has it, Node 20 behind a flag."""
    probe = await asyncio.create_subprocess_exec(
        executable, "-p", "typeof WebSocket", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(probe.communicate(), 30)
    if out.decode().strip() == "function":
        return []
    return ["--experimental-websocket", "--no-warnings"]


@pytest.mark.parametrize("scheme", ["ws", "wss"])
async def test_xmpp_js_over_websocket_chats_with_a_tcp_client_and_resumes_a_dropped_socket(
    start_node: NodeFactory, scheme: str
) -> None:
    """tests/js/websocket_im_sm.mjs: alice (ws:// or wss://, the HTTP listener's own TLS) and bob
    (direct TLS) subscribe to each other,
    see presence changes, exchange messages; alice's WebSocket is closed under her without
    <close/> while bob keeps writing; her client resumes on a new WebSocket and gets every
    message once, in order."""
    executable = js_client_or_skip()
    modules: dict[str, object] = {name: {} for name in DEFAULT_MODULES}
    modules["mod_stream_management"] = {"resume_timeout": 10}
    listen = ws_listen()
    listen["c2s"][0]["tls"] = {"mode": "tls"}
    if scheme == "wss":
        listen["http"][0]["tls"] = {}
    node = await start_node(listen=listen, modules=modules)
    report = await run_js(
        executable,
        *await websocket_flags(executable),
        str(JS_DIR / "websocket_im_sm.mjs"),
        ws_url(node).replace("http://", f"{scheme}://"),
        str(node.c2s_port(0)),
        "localhost",
    )
    assert report["errors"] == [], json.dumps(report, indent=1)
    assert report["alice_transport"] == "Socket"
    assert report["alice_jid"].startswith("alice@localhost/web.")  # Bind 2: tag + suffix
    assert report["bob_jid"].startswith("bob@localhost/tcp.")
    assert report["sm_enabled"] and report["sm_id"]
    assert report["alice_received"] == ["hello from tcp"] + [f"b{i}" for i in range(10)]
    assert report["bob_received"] == ["hello from ws", "back"]
    assert report["resumed"] == 1
    assert report["jid_after"] == report["alice_jid"]
    logins = report["alice_logins"]
    assert len(logins) == 2 and logins[1]["resume"], logins  # the second login resumed inline
    away = {"from": report["bob_jid"], "type": "available", "show": "away"}
    assert away in report["alice_saw"]
    chatty = {"from": report["alice_jid"], "type": "available", "show": "chat"}
    assert chatty in report["bob_saw"]
