"""The offline-message scenario: store, then deliver.

Store: S logged-in senders (no presence, so nothing is pushed to them) send M messages in
total, round robin to R users who are offline; each sender then pings the server, and the
phase ends when every ping is answered (a session handles its stanzas in order, so by then
every message has been stored or refused; refusals are counted by error condition).
Deliver: the R users log in (SCRAM-SHA-256 over STARTTLS, at most `concurrency` at a time),
send initial presence and read until they have their stored messages; the phase ends when
the last one has all of hers.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/: the load client

from loadclient import (
    NS_CLIENT,
    Element,
    LoginConfig,
    LoginStats,
    XmppConnection,
    login,
    q,
)
from scramcache import ScramCache

BODY = "offline benchmark message " + "x" * 70  # ~100 bytes of body


def _condition(el: Element) -> str:
    for child in el.children:
        if child.name.endswith(" error"):
            names = [c.name.split(" ")[-1] for c in child.children]
            return next((n for n in names if n != "text"), "?")
    return "?"


async def _send_share(
    conn: XmppConnection, targets: list[str], index: int, refused: dict[str, Counter[str]]
) -> None:
    """Send, then wait for the ping answer; errors are counted by recipient and condition."""
    for n, target in enumerate(targets):
        conn.send(
            f"<message to='{target}@localhost' type='chat' id='o{index}-{n}'>"
            f"<body>{BODY}</body></message>".encode()
        )
        if n % 50 == 49:
            await asyncio.sleep(0)  # let the transport flush
    conn.send(b"<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>")
    while True:
        el = await conn.recv()
        if el.name == q(NS_CLIENT, "iq") and el.attrs.get("id") == "sync":
            return
        if el.attrs.get("type") == "error":
            user = el.attrs.get("from", "?").split("@")[0]
            refused.setdefault(user, Counter())[_condition(el)] += 1


async def _receive(cfg: LoginConfig, user: str, expected: int, cache: ScramCache) -> None:
    conn = await login(cfg, user, "r", cache=cache, stats=LoginStats())
    got = 0
    try:
        while got < expected:  # messages refused at store time are never delivered
            el = await conn.recv()
            if el.name == q(NS_CLIENT, "message"):
                got += 1
    finally:
        conn.close()


async def run(
    port: int,
    senders: list[str],
    recipients: list[str],
    per_recipient: int,
    concurrency: int,
    cache: ScramCache,
    between: Any = None,
) -> dict[str, Any]:
    """Both phases; `between(phase)` (if given) is awaited before "store", between the
    phases ("deliver") and after them ("end"), e.g. to read query counters."""
    quiet = LoginConfig(port=port, mechanism="SCRAM-SHA-256", presence=False)
    talkative = LoginConfig(port=port, mechanism="SCRAM-SHA-256", done_on="sent")
    conns = [await login(quiet, s, "s", cache=cache, stats=LoginStats()) for s in senders]
    total = per_recipient * len(recipients)
    shares: list[list[str]] = [[] for _ in senders]
    for i in range(total):
        shares[i % len(senders)].append(recipients[i % len(recipients)])
    refused: dict[str, Counter[str]] = {}
    if between:
        await between("store")
    started = time.perf_counter()
    pairs = enumerate(zip(conns, shares, strict=True))
    await asyncio.gather(*(_send_share(c, share, i, refused) for i, (c, share) in pairs))
    stored = time.perf_counter() - started
    for conn in conns:
        conn.close()
    if between:
        await between("deliver")
    limit = asyncio.Semaphore(concurrency)

    async def receive(user: str) -> None:
        expected = per_recipient - sum(refused.get(user, Counter()).values())
        async with limit:
            await _receive(talkative, user, expected, cache)

    started = time.perf_counter()
    await asyncio.gather(*(receive(r) for r in recipients))
    delivered = time.perf_counter() - started
    if between:
        await between("end")
    errors: Counter[str] = Counter()
    for per_user in refused.values():
        errors.update(per_user)
    stored_count = total - sum(errors.values())
    return {
        "messages": total,
        "refused": dict(errors),
        "store_s": round(stored, 3),
        "store_per_s": round(total / stored, 1),
        "deliver_s": round(delivered, 3),
        "deliver_per_s": round(stored_count / delivered, 1),
    }
