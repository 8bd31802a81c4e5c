"""One session per full JID: a successor (a resumption on another node) or the newest wins
while an old row lingers."""

from __future__ import annotations

from meerkat.core.sessions import RESUMES_INFO, SessionManager, SessionRecord, newer
from meerkat.xmpp.jid import Jid

PHONE = Jid("alice", "localhost", "phone")


class Handle:
    def deliver(self, acc: object) -> bool:
        return True

    def kick(self, condition: str, text: str | None = None) -> None:
        pass


async def test_a_successor_row_hides_the_row_it_takes_over_even_if_its_sid_is_older() -> None:
    sm = SessionManager("node2")
    old = SessionRecord("200.1@node1", PHONE, "node1", priority=5)
    successor = SessionRecord(
        "100.1@node2", PHONE, "node2", priority=5, info={RESUMES_INFO: old.sid}
    )
    desk = SessionRecord("150.1@node1", PHONE.with_resource("desk"), "node1", priority=1)
    for record in (old, successor, desk):
        await sm.table.put(record)
    assert newer(successor, old) and not newer(old, successor)
    assert sorted(r.sid for r in sm.user_sessions(PHONE.bare)) == ["100.1@node2", "150.1@node1"]
    assert sm.session(PHONE) == successor
    await sm.table.remove(successor)
    assert sm.session(PHONE) == old  # a failed resumption leaves the old row in charge


async def test_without_a_claim_the_newest_sid_wins() -> None:
    sm = SessionManager("node1")
    first = SessionRecord("100.1@node1", PHONE, "node1")
    second = SessionRecord("300.1@node2", PHONE, "node2")
    await sm.table.put(first)
    await sm.table.put(second)
    assert sm.user_sessions(PHONE.bare) == [second]


async def test_a_handed_off_sid_forwards_to_its_new_node_for_a_while() -> None:
    sm = SessionManager("node1")
    forwarded: list[tuple[str, object]] = []
    sm.remote_deliver = lambda record, acc: forwarded.append((record.sid, acc)) or True
    old = SessionRecord("100.1@node1", PHONE, "node1")
    await sm.open(old, Handle())
    await sm.hand_off(old, SessionRecord("200.1@node2", PHONE, "node2"))
    assert sm.user_sessions(PHONE.bare) == [] and sm.local_handle(old.sid) is None
    assert sm.deliver_local(old.sid, "acc")  # type: ignore[arg-type]
    assert forwarded == [("200.1@node2", "acc")]
    assert not sm.deliver_local("999.1@node1", "acc")  # type: ignore[arg-type]
