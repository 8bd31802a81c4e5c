"""End to end on SQLite, PostgreSQL and MariaDB: a node on each database, users made with
`meerkatctl`, slixmpp clients chatting, rosters and offline messages surviving a restart,
and `meerkat` refusing to start on a database it cannot use.

Each test gets its own namespace through the shared fixtures of tests/conftest.py (an SQLite
file, a PostgreSQL schema or a MariaDB database, dropped afterwards); the real-process test
instead follows docs/databases.md literally: a login role with a password, a database it
owns, the schema file applied with `psql` / `mysql`, then `meerkat -c meerkat.toml`.
Servers that are absent are skipped with a message, or fail the test with CI=true.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import slixmpp

import meerkat.db
from children import create_subprocess_exec, popen
from meerkat.db import Database, DatabaseSettings
from meerkat.db.migrations import latest_version, load_migrations
from meerkat.db.versioning import SCHEMA_FILES, schema_sql

from .conftest import NodeFactory, free_port
from .rawxmpp import RawClient

BIN = Path(sys.executable).parent
SCHEMA_DIR = Path(meerkat.db.__file__).parent / "schema"
DOMAIN = "localhost"
PASSWORD = "s3cret 'pass' \"word\""

# Text that breaks naive SQL or XML handling: quotes, backslashes, placeholder look-alikes,
# markup characters, a non-BMP emoji, a newline.
TRICKY = 'O\'Brien said "hi" \\ %s ? $1 <b>&amp;</b> zoë 🦦☃\n'
# 64 KiB of characters (more bytes in UTF-8): past MySQL's TEXT/BLOB limit of 64 KiB bytes.
BIG = (TRICKY * (65536 // len(TRICKY) + 1))[:65536]
STANZA_LIMIT = 1_000_000

SettingsFactory = Callable[..., Awaitable[DatabaseSettings]]


# -- configuration as a user writes it ---------------------------------------------------------
def connection_table(settings: DatabaseSettings) -> dict[str, Any]:
    """`[outgoing_pools.rdbms.default.connection]` for `settings` (timeouts in ms)."""
    table: dict[str, Any] = {"driver": settings.driver, "database": settings.database}
    if settings.driver != "sqlite":
        table.update(
            host=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password,
        )
    table["query_timeout"] = int(settings.query_timeout * 1000)
    table["connect_timeout"] = int(settings.connect_timeout * 1000)
    if settings.schema:
        table["schema"] = settings.schema
    if settings.tls:
        table["tls"] = {"required": True}
        if settings.cafile:
            table["tls"]["cacertfile"] = settings.cafile
    return table


def loopback_cluster() -> dict[str, Any]:
    """`internal_databases` keeping the node's cluster listener on loopback (the default
    binds 0.0.0.0:4370)."""
    return {"cets": {"ip_address": "127.0.0.1", "port": free_port()}}


def outgoing_pools(settings: DatabaseSettings, create_schema: bool | None = None) -> dict[str, Any]:
    """The `outgoing_pools` config value (for `start_node(outgoing_pools=...)`)."""
    pool: dict[str, Any] = {"workers": settings.workers, "connection": connection_table(settings)}
    if create_schema is not None:
        pool["create_schema"] = create_schema
    return {"rdbms": {"default": pool}}


def pool_toml(settings: DatabaseSettings, create_schema: bool | None = None) -> str:
    """The same pool as TOML text, in the shape docs/databases.md shows."""
    pool = outgoing_pools(settings, create_schema)["rdbms"]["default"]
    lines = ["[outgoing_pools.rdbms.default]", f"  workers = {pool['workers']}"]
    if "create_schema" in pool:
        lines.append(f"  create_schema = {json.dumps(pool['create_schema'])}")
    lines.append("  [outgoing_pools.rdbms.default.connection]")
    connection = dict(pool["connection"])
    tls = connection.pop("tls", None)
    lines += [f"    {key} = {json.dumps(value)}" for key, value in connection.items()]
    if tls:
        lines.append("    [outgoing_pools.rdbms.default.connection.tls]")
        lines += [f"      {key} = {json.dumps(value)}" for key, value in tls.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
async def db_target(
    db_driver: str, make_db_settings: SettingsFactory, tmp_path: Path
) -> DatabaseSettings:
    """Settings for a fresh, empty namespace on `db_driver` (SQLite: an absolute file path,
    so that a restarted node with another data dir finds the same database)."""
    settings = await make_db_settings(db_driver)
    if db_driver == "sqlite":
        settings = settings.replace(database=str(tmp_path / settings.database))
    return settings.replace(workers=4)


@contextlib.asynccontextmanager
async def opened(settings: DatabaseSettings, data_dir: Path) -> AsyncIterator[Database]:
    db = await Database.open(settings, data_dir)
    try:
        yield db
    finally:
        await db.close()


async def run(*argv: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command to completion; its output (AssertionError with it on failure)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    out, _ = await asyncio.wait_for(proc.communicate(stdin), 60)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, f"{argv[0]} exited with {proc.returncode}: {text}"
    return text


async def apply_schema_file(settings: DatabaseSettings, data_dir: Path) -> None:
    """What docs/databases.md tells the user: `psql -f pg.sql` / `mysql < mysql.sql`.
    Without those clients installed, the same file through our own driver."""
    path = SCHEMA_DIR / SCHEMA_FILES[settings.driver]
    if settings.driver == "pgsql" and shutil.which("psql"):
        env = {"PGPASSWORD": settings.password}
        if settings.schema:
            env["PGOPTIONS"] = f"-c search_path={settings.schema}"
        await run(
            "psql", "-q", "-h", settings.host, "-p", str(settings.port), "-U",
            settings.username, "-d", settings.database, "-v", "ON_ERROR_STOP=1", "-f", str(path),
            env=env,
        )  # fmt: skip
    elif settings.driver == "mysql" and shutil.which("mysql"):
        await run(
            "mysql", "-h", settings.host, "-P", str(settings.port), "-u", settings.username,
            settings.database, stdin=path.read_bytes(), env={"MYSQL_PWD": settings.password},
        )  # fmt: skip
    else:
        async with opened(settings, data_dir) as db:
            await db.script(schema_sql(settings.driver))


# -- a real `meerkat` process ------------------------------------------------------------------
class MeerkatProcess:
    """`meerkat -c <dir>/meerkat.toml` with loopback listeners on free ports."""

    def __init__(self, workdir: Path, pool: str) -> None:
        self.workdir = workdir
        self.c2s, self.admin = free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.config = workdir / "meerkat.toml"
        self.log = workdir / "meerkat.log"
        self.config.write_text(
            f"""
[general]
hosts = ["{DOMAIN}"]
data_dir = "{workdir / "var"}"
loglevel = "warning"
max_stanza_size = {STANZA_LIMIT}

[[listen.c2s]]
port = {self.c2s}
ip_address = "127.0.0.1"
shaper = "none"

[[listen.http]]
port = {self.admin}
ip_address = "127.0.0.1"
[[listen.http.handlers.mongoose_graphql_handler]]
schema_endpoint = "admin"

[internal_databases.cets]
ip_address = "127.0.0.1"
port = {free_port()}

{pool}"""
        )

    async def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = popen(
                [str(BIN / "meerkat"), "-c", str(self.config)],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for _ in range(400):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.admin)
                writer.close()
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"meerkat exited: {self.output()}")
            await asyncio.sleep(0.05)
        raise AssertionError(f"meerkat did not start: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def ctl(self, *args: str) -> dict[str, Any]:
        """`meerkatctl <args>`; the parsed JSON answer."""
        url = f"http://127.0.0.1:{self.admin}/api/graphql"
        out = await run(str(BIN / "meerkatctl"), *args, env={"MEERKATCTL_URL": url})
        answer: dict[str, Any] = json.loads(out)
        return answer

    async def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        for _ in range(300):
            code = self.proc.poll()
            if code is not None:
                return code
            await asyncio.sleep(0.05)
        raise AssertionError("meerkat did not stop on SIGTERM")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


async def register(ctl: Callable[..., Awaitable[dict[str, Any]]], *users: str) -> None:
    answers = await asyncio.gather(
        *(
            ctl(
                "account",
                "registerUser",
                "--username",
                user,
                "--domain",
                DOMAIN,
                "--password",
                PASSWORD,
            )
            for user in users
        )
    )
    for user, answer in zip(users, answers, strict=True):
        assert answer["data"]["account"]["registerUser"]["jid"] == f"{user}@{DOMAIN}", answer


# -- slixmpp clients ---------------------------------------------------------------------------
ClientFactory = Callable[..., Awaitable[slixmpp.ClientXMPP]]


@pytest.fixture
async def clients() -> AsyncIterator[ClientFactory]:
    """`await clients(jid, port)`: a logged-in slixmpp client (ping and delay plugins on),
    auto-accepting subscriptions; disconnected after the test."""
    made: list[slixmpp.ClientXMPP] = []

    async def connect(jid: str, port: int, *, presence: bool = True) -> slixmpp.ClientXMPP:
        client = slixmpp.ClientXMPP(jid, PASSWORD)
        client.ssl_context.check_hostname = False
        client.ssl_context.verify_mode = ssl.CERT_NONE
        client.enable_direct_tls = False
        client.register_plugin("xep_0199")
        client.register_plugin("xep_0203")
        client.auto_authorize = True
        client.auto_subscribe = True
        client.messages = []  # type: ignore[attr-defined]
        client.add_event_handler("message", client.messages.append)  # type: ignore[attr-defined]
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def on_start(_: object) -> None:
            await client.get_roster()
            if presence:
                client.send_presence()
            if not started.done():
                started.set_result(None)

        client.add_event_handler("session_start", on_start)
        client.add_event_handler(
            "failed_auth",
            lambda _: started.done() or started.set_exception(PermissionError(jid)),
        )
        made.append(client)
        client.connect("127.0.0.1", port)
        await asyncio.wait_for(started, 10)
        return client

    yield connect
    await asyncio.gather(*(leave(c) for c in made))


async def leave(client: slixmpp.ClientXMPP) -> None:
    """Close the stream and wait until it is closed."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(client.disconnect(wait=1), 3)


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.02)


async def sync(client: slixmpp.ClientXMPP) -> None:
    """Ping the server: everything the client sent before has been processed (and stored)."""
    await client.plugin["xep_0199"].ping(DOMAIN, timeout=10)


def bodies(client: slixmpp.ClientXMPP) -> list[str]:
    return [str(m["body"]) for m in client.messages if m["type"] in ("chat", "normal")]  # type: ignore[attr-defined]


async def befriend(a: slixmpp.ClientXMPP, b: slixmpp.ClientXMPP) -> None:
    """Subscribe both ways (b auto-accepts and subscribes back) and wait for `both`."""
    a_jid, b_jid = a.boundjid.bare, b.boundjid.bare
    a.send_presence(pto=b_jid, ptype="subscribe")
    await wait_for(
        lambda: (
            a.client_roster[b_jid]["subscription"] == "both"
            and b.client_roster[a_jid]["subscription"] == "both"
        )
    )
    await wait_for(lambda: bool(a.client_roster[b_jid].resources))


async def roster_items(client: slixmpp.ClientXMPP) -> dict[str, Any]:
    answer = await client.get_roster()
    return {str(jid): item for jid, item in answer["roster"]["items"].items()}


# -- 1. the documented setup, as a real process --------------------------------------------------
@pytest.fixture
async def documented_database(
    db_driver: str, make_db_settings: SettingsFactory, tmp_path: Path
) -> AsyncIterator[DatabaseSettings]:
    """docs/databases.md "from an empty server": a login with a password owning a new
    database with the schema applied by hand (SQLite: nothing, the server creates it)."""
    base = await make_db_settings(db_driver)  # skips (or fails in CI) without a server
    if db_driver == "sqlite":
        yield DatabaseSettings(driver="sqlite", database=str(tmp_path / "meerkat.sqlite3"))
        return
    name, password = f"meerkat_test_{secrets.token_hex(6)}", secrets.token_urlsafe(12)
    if db_driver == "pgsql":
        # The docs' second PostgreSQL variant (a schema named like the role in an existing
        # database): DROP DATABASE waits for a checkpoint, too slow for a test teardown.
        create = [
            f"CREATE ROLE {name} LOGIN PASSWORD '{password}'",
            f"CREATE SCHEMA {name} AUTHORIZATION {name}",
        ]
        drop = [f"DROP SCHEMA IF EXISTS {name} CASCADE", f"DROP ROLE IF EXISTS {name}"]
        admin_settings = base.replace(schema=None)
        database = base.database
    else:
        create = [
            f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
            f"CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'",
            f"GRANT ALL PRIVILEGES ON {name}.* TO '{name}'@'%'",
        ]
        drop = [f"DROP DATABASE IF EXISTS {name}", f"DROP USER IF EXISTS '{name}'@'%'"]
        admin_settings = base
        database = name
    async with opened(admin_settings, tmp_path) as admin:
        for statement in create:
            await admin.execute(statement)
    settings = base.replace(database=database, username=name, password=password, schema=None)
    try:
        await apply_schema_file(settings, tmp_path)
        yield settings
    finally:
        async with opened(admin_settings, tmp_path) as admin:
            for statement in drop:
                await admin.execute(statement)


async def test_a_meerkat_process_serves_chat_rosters_and_offline_messages_across_a_restart(
    documented_database: DatabaseSettings, tmp_path: Path, clients: ClientFactory
) -> None:
    server = MeerkatProcess(tmp_path, pool_toml(documented_database))
    try:
        await server.start()
        await register(server.ctl, "alice", "bob", "zoë")
        alice = await clients("alice@localhost/a", server.c2s)
        bob = await clients("bob@localhost/b", server.c2s)
        await befriend(alice, bob)
        alice.send_message("bob@localhost", "hello bob", mtype="chat")
        bob.send_message("alice@localhost", "hello alice", mtype="chat")
        await wait_for(lambda: bodies(bob) == ["hello bob"] and bodies(alice) == ["hello alice"])
        # zoë has never logged in: these are stored.
        for body in ("first", TRICKY, BIG):
            alice.send_message("zoë@localhost", body, mtype="chat")
        await sync(alice)
        await asyncio.gather(leave(alice), leave(bob))
        assert await server.terminate() == 0

        await server.start()
        zoe = await clients("zoë@localhost/z", server.c2s)
        await wait_for(lambda: len(bodies(zoe)) == 3)
        assert bodies(zoe) == ["first", TRICKY, BIG]
        assert all(m["delay"]["stamp"] is not None for m in zoe.messages)  # type: ignore[attr-defined]
        alice = await clients("alice@localhost/a2", server.c2s)
        assert (await roster_items(alice))["bob@localhost"]["subscription"] == "both"
        count = await server.ctl("account", "countUsers", "--domain", DOMAIN)
        assert count["data"]["account"]["countUsers"] == 3
        await leave(alice)
        await leave(zoe)
        assert await server.terminate() == 0
    finally:
        server.kill()


# -- 2. awkward data through XMPP, and an in-process node restart ------------------------------
async def test_quotes_emoji_and_64_kib_texts_round_trip_through_xmpp_and_a_restart(
    db_target: DatabaseSettings,
    start_node: NodeFactory,
    clients: ClientFactory,
) -> None:
    config = {
        "outgoing_pools": outgoing_pools(db_target, create_schema=True),
        "general": {"max_stanza_size": STANZA_LIMIT},
        "internal_databases": loopback_cluster(),
    }
    node = await start_node(users=(), **config)
    admin_port = node.http_listeners[0].config.port
    url = f"http://127.0.0.1:{admin_port}/api/graphql"

    async def ctl(*args: str) -> dict[str, Any]:
        out = await run(str(BIN / "meerkatctl"), *args, env={"MEERKATCTL_URL": url})
        answer: dict[str, Any] = json.loads(out)
        return answer

    await register(ctl, "alice", "bob", "zoë")
    alice = await clients("alice@localhost/a", node.c2s_port(0))
    bob = await clients("bob@localhost/b", node.c2s_port(0))
    await befriend(alice, bob)
    # Attribute values: XML turns a raw newline into a space, so names without one.
    name, groups = TRICKY.strip(), [TRICKY.strip() + " (group)", "🦦"]
    await alice.update_roster("bob@localhost", name=name, groups=groups)
    alice.send_message("bob@localhost", BIG, mtype="chat")
    alice.send_message("zoë@localhost", BIG, mtype="chat")
    alice.send_message("zoë@localhost", TRICKY, mtype="chat")
    await wait_for(lambda: bodies(bob) == [BIG])
    await sync(alice)
    raw = await raw_login(node.c2s_port(0), "alice")
    await raw_private_set(raw, BIG)
    await raw.close()
    await asyncio.gather(leave(alice), leave(bob))
    await node.stop()

    node = await start_node(users=(), **config)
    alice = await clients("alice@localhost/a2", node.c2s_port(0), presence=False)
    item = (await roster_items(alice))["bob@localhost"]
    assert (item["name"], sorted(item["groups"]), item["subscription"]) == (
        name,
        sorted(groups),
        "both",
    )
    zoe = await clients("zoë@localhost/z", node.c2s_port(0))
    await wait_for(lambda: len(bodies(zoe)) == 2)
    assert bodies(zoe) == [BIG, TRICKY]
    raw = await raw_login(node.c2s_port(0), "alice")
    assert await raw_private_get(raw) == BIG
    await raw.close()


PRIVATE_NS = "urn:example:meerkat-test"


async def raw_login(port: int, user: str, password: str = PASSWORD) -> RawClient:
    raw = await RawClient.connect(port)
    await raw.login(user, password, "raw")
    return raw


async def raw_private_set(raw: RawClient, text: str) -> None:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    raw.send(
        f"<iq type='set' id='ps'><query xmlns='jabber:iq:private'>"
        f"<note xmlns='{PRIVATE_NS}'>{escaped}</note></query></iq>"
    )
    reply = await raw.expect(lambda e: e.attrs.get("id") == "ps")
    assert reply.attrs["type"] == "result", reply


async def raw_private_get(raw: RawClient) -> str | None:
    raw.send(
        f"<iq type='get' id='pg'><query xmlns='jabber:iq:private'>"
        f"<note xmlns='{PRIVATE_NS}'/></query></iq>"
    )
    reply = await raw.expect(lambda e: e.attrs.get("id") == "pg")
    assert reply.attrs["type"] == "result", reply
    query = reply.find("query", "jabber:iq:private")
    note = None if query is None else query.find("note", PRIVATE_NS)
    return None if note is None else note.text


# -- 3. refusing to start ----------------------------------------------------------------------
SERVER_DRIVERS = [
    pytest.param("pgsql", id="pgsql", marks=pytest.mark.pg),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]


@pytest.fixture(params=SERVER_DRIVERS)
async def server_db(
    request: pytest.FixtureRequest, make_db_settings: SettingsFactory
) -> DatabaseSettings:
    """A fresh empty namespace on PostgreSQL or MariaDB."""
    return await make_db_settings(str(request.param))


async def refused_start(tmp_path: Path, settings: DatabaseSettings, **pool: Any) -> str:
    """Run `meerkat` on `settings`; assert it exits non-zero without serving; its stderr."""
    server = MeerkatProcess(tmp_path, pool_toml(settings, **pool))
    proc = await create_subprocess_exec(
        str(BIN / "meerkat"),
        "-c",
        str(server.config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    text = err.decode(errors="replace")
    assert proc.returncode == 1, text
    assert "serving" not in text and not out, text  # no start-up banner
    assert "Traceback" not in text, text
    for port in (server.c2s, server.admin):
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
    return text


async def test_meerkat_refuses_to_start_when_the_database_is_unreachable(
    server_db: DatabaseSettings, tmp_path: Path
) -> None:
    text = await refused_start(tmp_path, server_db.replace(port=free_port()))
    assert "cannot reach" in text, text


async def test_meerkat_refuses_to_start_when_the_database_does_not_answer(
    server_db: DatabaseSettings, tmp_path: Path
) -> None:
    with socket.socket() as silent:  # the kernel completes the handshake; nobody answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        text = await refused_start(tmp_path, server_db.replace(port=port, connect_timeout=1.0))
    assert "cannot reach" in text and "no answer within 1s" in text, text


async def test_meerkat_refuses_to_start_when_the_credentials_are_wrong(
    server_db: DatabaseSettings, tmp_path: Path
) -> None:
    # PostgreSQL here trusts every known role, so an unknown role stands for a bad login.
    bad = server_db.replace(username="meerkat_no_such_user", password="wrong")
    text = await refused_start(tmp_path, bad)
    assert "rejected the credentials of user 'meerkat_no_such_user'" in text, text


async def test_meerkat_refuses_to_start_when_the_database_ca_file_is_missing(
    server_db: DatabaseSettings, tmp_path: Path
) -> None:
    missing = str(tmp_path / "no-such-ca.pem")
    text = await refused_start(tmp_path, server_db.replace(tls=True, cafile=missing))
    assert f"cannot load the database CA file '{missing}'" in text, text


async def test_meerkat_refuses_to_start_when_the_database_does_not_exist(
    server_db: DatabaseSettings, tmp_path: Path
) -> None:
    text = await refused_start(tmp_path, server_db.replace(database="meerkat_no_such_db"))
    assert "database 'meerkat_no_such_db' does not exist" in text, text


async def test_meerkat_refuses_to_start_without_a_schema_when_not_asked_to_create_it(
    server_db: DatabaseSettings, tmp_path: Path
) -> None:
    text = await refused_start(tmp_path, server_db, create_schema=False)
    assert "has no Meerkat schema: apply" in text, text
    assert SCHEMA_FILES[server_db.driver] in text, text


async def test_meerkat_refuses_to_start_on_a_schema_of_another_version(
    db_target: DatabaseSettings, tmp_path: Path
) -> None:
    async with opened(db_target, tmp_path) as db:
        await db.create_schema()
        await db.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
            99,
            "from the future",
            0,
        )
    # SQLite creates and migrates by default; a newer schema is refused all the same.
    create = None if db_target.driver == "sqlite" else False
    text = await refused_start(tmp_path, db_target, create_schema=create)
    wanted = latest_version(load_migrations())
    assert f"schema version 99 is newer than version {wanted} known to" in text, text


async def test_meerkat_refuses_to_start_on_an_incomplete_schema(
    server_db: DatabaseSettings, tmp_path: Path
) -> None:
    async with opened(server_db, tmp_path) as db:
        await db.create_schema()
        await db.execute("DROP TABLE vcard")
    text = await refused_start(tmp_path, server_db, create_schema=False)
    assert "tables are missing: vcard" in text, text


# -- 4. many senders, offline recipients -------------------------------------------------------
async def test_simultaneous_first_messages_to_offline_users_are_all_stored_and_delivered(
    db_target: DatabaseSettings, start_node: NodeFactory
) -> None:
    senders = [f"sender{i}" for i in range(10)]
    recipients = [f"rcpt{i}" for i in range(10)]
    node = await start_node(
        users=(*senders, *recipients),
        outgoing_pools=outgoing_pools(db_target.replace(workers=10), create_schema=True),
        internal_databases=loopback_cluster(),
    )
    port = node.c2s_port(0)
    clients = await asyncio.gather(*(raw_login(port, s, "secret") for s in senders))
    # Every recipient's empty queue gets ten messages at once: the stores race for it.
    for n, client in enumerate(clients):
        for rcpt in recipients:
            client.send(
                f"<message to='{rcpt}@localhost' type='chat' id='{rcpt}-{n}'><body>{n}</body>"
                "</message>"
            )
        client.send("<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>")
    for client in clients:
        reply = await client.expect(lambda e: e.name in ("iq", "message"), timeout=20)
        assert reply.attrs.get("id") == "sync", f"a message was refused: {reply}"
        await client.close()
    for rcpt in recipients:
        client = await raw_login(port, rcpt, "secret")
        client.send("<presence/>")
        got = sorted([(await client.expect("message")).find_text("body") or "" for _ in senders])
        assert got == sorted(str(n) for n in range(len(senders))), rcpt
        await client.close()


# -- 5. what a login costs ------------------------------------------------------------------------
@contextlib.contextmanager
def counting_statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement any driver adapter sends (one round trip each), in order."""
    from meerkat.db.drivers.mysql import MysqlConnection
    from meerkat.db.drivers.pgsql import PgConnection
    from meerkat.db.drivers.sqlite import SqliteConnection

    sent: list[str] = []

    def counted(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def wrapper(self: object, sql: str, *args: Any, **kwargs: Any) -> Any:
            sent.append(" ".join(sql.split()))
            return await method(self, sql, *args, **kwargs)

        return wrapper

    # insert_id, script, begin/commit/rollback all end in these leaf methods.
    for cls, names in (
        (PgConnection, ("execute", "fetchall")),
        (SqliteConnection, ("execute", "fetchall", "script")),
        (MysqlConnection, ("_run",)),
    ):
        for name in names:
            monkeypatch.setattr(cls, name, counted(getattr(cls, name)))
    yield sent


async def test_a_scram_login_and_bind_cost_one_database_round_trip(
    db_target: DatabaseSettings, start_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await start_node(
        users=("alice",),
        outgoing_pools=outgoing_pools(db_target, create_schema=True),
        internal_databases=loopback_cluster(),
    )
    with counting_statements(monkeypatch) as sent:
        client = await RawClient.connect(node.c2s_port(0))
        await client.open_stream()
        await client.starttls()
        assert (await client.scram("alice", "secret", "SCRAM-SHA-256")).name == "success"
        await client.open_stream()
        await client.bind("r")
        login = list(sent)
    await client.close()
    assert len(login) == 1 and login[0].startswith("SELECT password, pass_details FROM users")
