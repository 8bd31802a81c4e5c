"""`RandomPool`: kernel random bytes fetched in bulk, each byte handed out once."""

from __future__ import annotations

import os

import pytest

from meerkat.c2s.node import RandomPool


def test_each_call_gets_the_bytes_it_asks_for_and_never_the_same_ones() -> None:
    pool = RandomPool(size=64)
    tokens = [pool(8) for _ in range(100)]  # several refills
    assert all(len(t) == 8 for t in tokens)
    assert len(set(tokens)) == 100
    assert len(pool(200)) == 200  # more than the pool holds at once


def test_the_kernel_is_asked_once_per_pool_not_once_per_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    real = os.urandom

    def counting(n: int) -> bytes:
        calls.append(n)
        return real(n)

    monkeypatch.setattr(os, "urandom", counting)
    pool = RandomPool(size=4096)
    for _ in range(100):  # 25 logins' worth of stream ids and nonces
        pool(8), pool(18)
    assert calls == [4096]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_hand_out_its_parents_bytes() -> None:
    pool = RandomPool(size=4096)
    pool(8)  # the pool holds unused bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, pool(16))
        os._exit(0)
    os.close(write)
    child = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert child != pool(16)
