"""Small helpers shared by the cluster XMPP tests (no fixtures here)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

from e2e.rawxmpp import RawClient
from meerkat.xmpp import ns
from meerkat.xmpp.element import Element

SECRET = "cluster-test-secret-0123456789"


async def wait_for(
    condition: Callable[[], bool | Awaitable[bool]],
    timeout: float = 10.0,
    what: str = "condition",
    interval: float = 0.02,
) -> None:
    """Poll `condition` until true; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


def message(to: str, body: str, mtype: str = "chat", mid: str = "") -> str:
    return f"<message to='{to}' type='{mtype}' id='{mid or body}'><body>{body}</body></message>"


def presence(priority: int | None = None, show: str | None = None, to: str | None = None) -> str:
    inner = ""
    if show is not None:
        inner += f"<show>{show}</show>"
    if priority is not None:
        inner += f"<priority>{priority}</priority>"
    dest = f" to='{to}'" if to else ""
    return f"<presence{dest}>{inner}</presence>"


async def body_of_next_message(client: RawClient, timeout: float = 5.0) -> str:
    el = await client.expect(lambda e: e.name == "message" and e.find("body") is not None, timeout)
    return el.find_text("body") or ""


async def no_message(client: RawClient, wait: float = 0.3) -> bool:
    """True when no message with a body arrives within `wait` seconds."""
    try:
        await body_of_next_message(client, wait)
    except TimeoutError:
        return True
    return False


def is_presence_from(frm: str, ptype: str | None = None) -> Callable[[Element], bool]:
    def match(el: Element) -> bool:
        return (
            el.name == "presence"
            and el.attrs.get("from", "").startswith(frm)
            and el.attrs.get("type") == ptype
        )

    return match


def roster_push(el: Element) -> bool:
    query = el.find("query", ns.ROSTER)
    return el.name == "iq" and el.attrs.get("type") == "set" and query is not None
