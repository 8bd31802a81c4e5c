"""Starting modules with the node's DEBUG logging on (a `module_started` line per module)."""

from __future__ import annotations

import logging

import pytest
from test_api_support import Kernel


async def test_modules_start_with_debug_logging_and_name_each_module(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="meerkat.core.modules")
    kernel = Kernel()
    await kernel.start_modules("mod_roster", "mod_last")
    try:
        lines = [r.getMessage() for r in caplog.records if r.name == "meerkat.core.modules"]
        assert "module_started module=mod_roster" in lines
        assert "module_started module=mod_last" in lines
    finally:
        await kernel.stop_modules()
