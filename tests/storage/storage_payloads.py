"""Strings that break naive storage code, shared by the contract tests."""

from __future__ import annotations

EMOJI = "🦦 ünïcødé 中文 العربية 👩‍👩‍👧 \U0001f9ec"
QUOTES = 'it\'s "quoted" `back` \\ backslash \\\' \\"'
INJECTION = "x'); DROP TABLE users; -- ? %s $1 /*"
NUL = "before\x00after"
BIG = "🐱" * (64 * 1024 // 4) + "x" * 64 * 1024  # 64 KiB of emoji as UTF-8, then 64 KiB ASCII

# Text that may appear in any string field (NUL only in XML payloads: see `XML_PAYLOADS`).
TEXTS = [EMOJI, QUOTES, INJECTION, "", " padded ", "UPPER lower"]
XML_PAYLOADS = [
    f"<message><body>{EMOJI}</body></message>",
    f"<message><body>{QUOTES}</body></message>",
    f"<message><body>{INJECTION}</body></message>",
    f"<message><body>{NUL}</body></message>",
    f"<message><body>{BIG}</body></message>",
]
