"""Stream management clients for the cluster tests: enable, cut, resume (raw XML)."""

from __future__ import annotations

from e2e.rawxmpp import RawClient
from meerkat.xmpp import ns
from meerkat.xmpp.element import Element

SM = f"xmlns='{ns.SM}'"


async def enable_sm(client: RawClient) -> str:
    """Enable stream management with resumption; the SM-ID."""
    client.send(f"<enable {SM} resume='true'/>")
    enabled = await client.expect("enabled")
    return enabled.attrs["id"]


def cut(client: RawClient) -> None:
    """The client's network is gone: no closing tag, no orderly close."""
    client.writer.transport.abort()


async def resume(
    port: int, user: str, smid: str, h: int, *, tls: str = "none"
) -> tuple[RawClient, Element]:
    """A new connection that authenticates and sends <resume/>; (client, resumed|failed)."""
    client = await RawClient.connect(port)
    await client.open_stream()
    if tls == "starttls":
        await client.starttls()
    assert (await client.scram(user, "secret")).name == "success"
    await client.open_stream()
    client.send(f"<resume {SM} previd='{smid}' h='{h}'/>")
    reply = await client.expect(lambda e: e.xmlns == ns.SM and e.name in ("resumed", "failed"))
    return client, reply


async def messages(client: RawClient, count: int, timeout: float = 5.0) -> list[Element]:
    """The next `count` messages with a body."""
    out: list[Element] = []
    while len(out) < count:
        out.append(await client.expect(has_body, timeout))
    return out


def has_body(el: Element) -> bool:
    return el.name == "message" and el.find("body") is not None


def body(el: Element) -> str:
    return el.find_text("body") or ""


def delay_of(el: Element) -> Element | None:
    return el.find("delay", ns.DELAY)
