"""The pure wire layer: frames and the handshake, tested with pair helpers (no IO)."""

from __future__ import annotations

import pytest

from meerkat.cluster import wire
from meerkat.cluster.errors import (
    AuthenticationFailed,
    HandshakeError,
    HandshakeRejected,
    ProtocolError,
)


def hello(node: str, nonce: bytes, *, cluster: str = "c", version: int = 1) -> wire.Hello:
    return wire.Hello(version, cluster, node, f"{node}-boot", nonce)


def decode_all(data: bytes) -> list[object]:
    dec = wire.FrameDecoder()
    dec.feed(data)
    return dec.messages()


class Pair:
    """Two handshake ends passing messages directly."""

    def __init__(self, a_secret: bytes = b"k", b_secret: bytes = b"k", **b_kw: object) -> None:
        self.a = wire.Handshake(secret=a_secret, local=hello("a", b"A" * 32), initiator=True)
        self.b = wire.Handshake(
            secret=b_secret, local=hello("b", b"B" * 32, **b_kw), initiator=False
        )  # type: ignore[arg-type]

    def run(self, accept: bool = True) -> None:
        to_b = decode_all(self.a.start())
        to_a = decode_all(self.b.start())
        while to_a or to_b:
            next_b: list[object] = []
            next_a: list[object] = []
            for msg in to_b:
                next_a += decode_all(self.b.receive(msg))
                if self.b.state is wire.HandshakeState.AWAIT_DECISION:
                    out = self.b.accept() if accept else self.b.reject("duplicate")
                    next_a += decode_all(out)
            for msg in to_a:
                next_b += decode_all(self.a.receive(msg))
            to_a, to_b = next_a, next_b


def test_frames_round_trip_and_keep_tuples() -> None:
    msg = ["op", ("user", 1, b"\x00"), {"k": [("nested",)]}, None, 1.5]
    assert decode_all(wire.encode(msg)) == [msg]
    assert decode_all(wire.encode(msg))[0][1] == ("user", 1, b"\x00")  # type: ignore[index]


def test_frames_split_across_reads_are_reassembled() -> None:
    data = wire.encode(["a"]) + wire.encode(["b", 2])
    dec = wire.FrameDecoder()
    out = []
    for i in range(len(data)):
        dec.feed(data[i : i + 1])
        out += dec.messages()
    assert out == [["a"], ["b", 2]]


def test_many_frames_of_one_read_come_out_in_order_and_a_partial_one_waits() -> None:
    frames = [wire.encode(["m", i, ("key", i)]) for i in range(50)]
    data = b"".join(frames)
    cut = len(data) - 3  # the last frame arrives in two reads
    dec = wire.FrameDecoder()
    dec.feed(data[:cut])
    first = dec.messages()
    assert first == [["m", i, ("key", i)] for i in range(49)]
    assert dec.messages() == []
    dec.feed(data[cut:])
    assert dec.messages() == [["m", 49, ("key", 49)]]


def test_a_bad_frame_after_good_ones_fails_and_leaves_the_buffer_usable() -> None:
    dec = wire.FrameDecoder()
    dec.feed(wire.encode(["ok"]) + b"\x00\x00\x00\x02\xc1\xc1")
    with pytest.raises(ProtocolError):
        dec.messages()
    dec.feed(wire.encode(["more"]))  # no buffer export left behind by the failed decode


def test_a_link_encoder_writes_the_same_frames_as_encode() -> None:
    encoder = wire.FrameEncoder()
    for msg in (["s", "cets", ["t", "op", "ref", 1, ["insert", [[["k"], ("v", 1)]]]]], ["hb"]):
        assert encoder.encode(msg) == wire.encode(msg)
    with pytest.raises(TypeError):
        encoder.encode([object()])
    assert encoder.encode(["after", "an error"]) == wire.encode(["after", "an error"])


def test_oversize_frame_is_a_protocol_error() -> None:
    dec = wire.FrameDecoder(max_frame=10)
    dec.feed(wire.encode(["x" * 20]))
    with pytest.raises(ProtocolError):
        dec.messages()


def test_garbage_body_is_a_protocol_error() -> None:
    dec = wire.FrameDecoder()
    dec.feed(b"\x00\x00\x00\x03\xc1\xc1\xc1")
    with pytest.raises(ProtocolError):
        dec.messages()


def test_unknown_objects_cannot_be_encoded() -> None:
    with pytest.raises(TypeError):
        wire.encode([object()])


def test_handshake_with_the_same_secret_establishes_both_sides() -> None:
    p = Pair()
    p.run()
    assert p.a.state is wire.HandshakeState.ESTABLISHED
    assert p.b.state is wire.HandshakeState.ESTABLISHED
    assert p.a.peer is not None and p.a.peer.node == "b"
    assert p.b.peer is not None and p.b.peer.boot_id == "a-boot"


def test_handshake_with_a_wrong_secret_fails_authentication() -> None:
    p = Pair(b_secret=b"other")
    with pytest.raises(AuthenticationFailed):
        p.run()


def test_secret_never_appears_in_handshake_bytes() -> None:
    secret = b"super-secret-cluster-key"
    a = wire.Handshake(secret=secret, local=hello("a", b"A" * 32), initiator=True)
    out = a.start() + a.receive(["hello", 1, "c", "b", "b-boot", b"B" * 32])
    assert secret not in out


def test_acceptor_can_reject_a_proven_peer() -> None:
    p = Pair()
    with pytest.raises(HandshakeRejected):
        p.run(accept=False)


def test_version_or_cluster_mismatch_fails_the_handshake() -> None:
    with pytest.raises(HandshakeError):
        Pair(version=2).run()
    with pytest.raises(HandshakeError):
        Pair(cluster="other").run()


def test_reflected_proof_is_refused() -> None:
    a = wire.Handshake(secret=b"k", local=hello("a", b"A" * 32), initiator=True)
    a.start()
    sent = decode_all(a.receive(["hello", 1, "c", "b", "b-boot", b"B" * 32]))
    with pytest.raises(AuthenticationFailed):
        a.receive(sent[0])  # our own proof echoed back


def test_messages_out_of_order_are_handshake_errors() -> None:
    a = wire.Handshake(secret=b"k", local=hello("a", b"A" * 32), initiator=True)
    with pytest.raises(HandshakeError):
        a.receive(["proof", b"x" * 32])
    assert a.state is wire.HandshakeState.FAILED
