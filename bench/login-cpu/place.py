"""Where the login-cpu tools run: ports and output folder, shifted by `LOGIN_CPU_PORT`.

Developers measuring in parallel worktrees each pick their own `LOGIN_CPU_PORT` (default
29222, the STARTTLS port; direct TLS is the next port, the admin API 329 above); each gets
its own output folder and a config derived from `meerkat.toml` with its ports and data dir.
With `workers` > 1 the config sets `general.workers` and the cluster port (148 above the
c2s port; worker i uses the next ones).
"""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
PORT = int(os.environ.get("LOGIN_CPU_PORT", "29222"))
ADMIN = PORT + 329
CLUSTER = PORT + 148
OUT = Path("/tmp/meerkat-login-cpu") if PORT == 29222 else Path(f"/tmp/meerkat-login-cpu-{PORT}")


def config(workers: int = 1) -> Path:
    """`meerkat.toml` with this place's ports and data dir (and `workers`), written into OUT."""
    text = (HERE / "meerkat.toml").read_text()
    if workers > 1:
        text = text.replace("[general]\n", f"[general]\nworkers = {workers}\n")
        text += (
            '\n[internal_databases.cets]\ncluster_name = "login-cpu"\n'
            f'ip_address = "127.0.0.1"\nadvertised_address = "127.0.0.1"\nport = {CLUSTER}\n'
        )
    for old, new in (("29222", PORT), ("29223", PORT + 1), ("29551", ADMIN)):
        text = text.replace(f"port = {old}", f"port = {new}")
    text = text.replace('"/tmp/meerkat-login-cpu/var"', f'"{OUT}/var"')
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / ("meerkat.toml" if workers == 1 else f"meerkat-w{workers}.toml")
    path.write_text(text)
    return path
