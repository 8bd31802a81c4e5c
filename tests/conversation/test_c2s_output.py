"""What a c2s session writes and how: pre-auth features built once per kind of connection."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from test_c2s_harness import BASE_MODULES, C2SHarness, start_harness

from meerkat.core.hooks import SASL2_STREAM_FEATURES
from meerkat.xmpp import ns
from meerkat.xmpp.element import Element


@pytest.fixture
async def harness() -> AsyncIterator[C2SHarness]:
    h = await start_harness(BASE_MODULES)
    yield h
    await h.stop()


async def test_pre_auth_features_are_built_once_per_kind_of_connection(
    harness: C2SHarness,
) -> None:
    built: list[int] = []

    async def counting(acc: list[Element], params: dict[str, object]) -> object:
        built.append(1)
        acc.append(Element("counted", "urn:example:count"))
        return None

    hooks = harness.server.hooks
    hooks.add(SASL2_STREAM_FEATURES, None, counting, 50, owner="test")
    first = await harness.connect().open()
    second = await harness.connect().open()
    assert built == [1]
    assert first == second
    assert first.find("authentication", ns.SASL2) is not None

    hooks.remove_owner("test")  # a changed set of handlers is seen at once
    third = await harness.connect().open()
    assert built == [1]
    assert "urn:example:count" not in str(third)
