"""meerkatctl against a real admin endpoint on an ephemeral port."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from test_api_support import Kernel

from meerkat import ctl
from meerkat.graphql import commands, make_graphql_app
from ports import free_port


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> object:
        return json.loads(self.out)


@dataclass
class Node:
    kernel: Kernel
    url: str

    async def ctl(self, *argv: str, env: dict[str, str] | None = None) -> Run:
        """Run meerkatctl in a thread (it blocks on HTTP) while this loop serves."""
        out, err = io.StringIO(), io.StringIO()
        env = {"MEERKATCTL_URL": self.url} if env is None else env
        code = await asyncio.to_thread(ctl.main, list(argv), env=env, stdout=out, stderr=err)
        return Run(code, out.getvalue(), err.getvalue())


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/api/graphql"


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    kernel = Kernel()
    runner, url = await _serve(make_graphql_app(kernel.ctx))
    yield Node(kernel, url)
    await runner.cleanup()


@pytest.fixture
async def secured() -> AsyncIterator[Node]:
    kernel = Kernel()
    runner, url = await _serve(make_graphql_app(kernel.ctx, username="admin", password="secret"))
    yield Node(kernel, url)
    await runner.cleanup()


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/api/graphql"


REGISTER_ALICE = (
    "account",
    "registerUser",
    "--domain",
    "localhost",
    "--username",
    "alice",
    "--password",
    "secret",
)


async def test_register_user_prints_the_exact_pretty_json(node: Node) -> None:
    run = await node.ctl(*REGISTER_ALICE)
    assert run.code == 0
    assert run.out == (
        "{\n"
        '  "data": {\n'
        '    "account": {\n'
        '      "registerUser": {\n'
        '        "message": "User alice@localhost successfully registered",\n'
        '        "jid": "alice@localhost"\n'
        "      }\n"
        "    }\n"
        "  }\n"
        "}\n"
    )
    assert await node.kernel.accounts.check_password(
        node.kernel.accounts.user_jid("alice", "localhost"), "secret"
    )


async def test_an_error_in_the_result_exits_1_and_prints_it(node: Node) -> None:
    await node.ctl(*REGISTER_ALICE)
    run = await node.ctl(*REGISTER_ALICE)
    assert run.code == 1
    assert run.json == {
        "data": {"account": {"registerUser": None}},
        "errors": [
            {
                "message": "User alice@localhost already registered at node meerkat@testhost",
                "extensions": {"code": "exists", "jid": "alice@localhost"},
                "path": ["account", "registerUser"],
            }
        ],
    }


async def test_omitted_optional_argument_generates_a_username(node: Node) -> None:
    run = await node.ctl("account", "registerUser", "--domain", "localhost", "--password", "p")
    assert run.code == 0
    jid = run.json["data"]["account"]["registerUser"]["jid"]  # type: ignore[index]
    assert jid.endswith("@localhost")


async def test_int_arguments_are_sent_as_integers(node: Node) -> None:
    await node.kernel.user("alice@localhost")
    await node.kernel.login("alice@localhost/b")
    await node.kernel.login("alice@localhost/a")
    run = await node.ctl("session", "getUserResource", "--user", "alice@localhost", "--number", "2")
    assert (run.code, run.json) == (0, {"data": {"session": {"getUserResource": "b"}}})
    run = await node.ctl("session", "getUserResource", "--user", "alice@localhost", "--number", "x")
    assert run.code == 1
    assert "Invalid value for --number" in run.err


async def test_the_selection_set_has_every_field_of_the_result(node: Node) -> None:
    await node.kernel.user("alice@localhost")
    await node.kernel.login("alice@localhost/phone")
    run = await node.ctl("session", "listSessions")
    assert run.code == 0
    [session] = run.json["data"]["session"]["listSessions"]  # type: ignore[index]
    assert list(session) == ["user", "connection", "ip", "port", "priority", "node", "uptime"]
    run = await node.ctl("session", "kickUser", "--user", "alice@localhost", "--reason", "bye")
    assert run.json == {
        "data": {
            "session": {
                "kickUser": [
                    {
                        "jid": "alice@localhost/phone",
                        "kicked": True,
                        "code": None,
                        "message": "Session kicked",
                    }
                ]
            }
        }
    }


async def test_status_is_an_alias_of_server_status(node: Node) -> None:
    alias, full = await node.ctl("status"), await node.ctl("server", "status")
    assert alias.code == full.code == 0
    assert alias.out == full.out
    assert alias.json["data"]["server"]["status"]["statusCode"] == "RUNNING"  # type: ignore[index]


async def test_graphql_runs_an_arbitrary_document(node: Node) -> None:
    run = await node.ctl("graphql", "{ checkAuth { authStatus } }")
    assert (run.code, run.json) == (0, {"data": {"checkAuth": {"authStatus": "AUTHORIZED"}}})
    run = await node.ctl(
        "graphql",
        "query ($d: DomainName!) { account { countUsers(domain: $d) } }",
        "--variables",
        '{"d": "localhost"}',
    )
    assert (run.code, run.json) == (0, {"data": {"account": {"countUsers": 0}}})
    run = await node.ctl("graphql", "{ nope }")
    assert run.code == 1
    assert run.json["errors"][0]["extensions"]["code"] == "validation_error"  # type: ignore[index]


async def test_no_arguments_is_usage_with_exit_2(node: Node) -> None:
    run = await node.ctl()
    assert run.code == 2
    assert run.err.startswith("Usage: meerkatctl")
    assert "  account " in run.err and "  session " in run.err


async def test_help_at_every_level_exits_0(node: Node) -> None:
    top = await node.ctl("--help")
    assert top.code == 0 and top.out.startswith("Usage: meerkatctl") and "Categories:" in top.out
    category = await node.ctl("account")
    assert category.code == 0
    assert "registerUser" in category.out and "checkPassword" in category.out
    assert (await node.ctl("account", "--help")).out == category.out
    command = await node.ctl("account", "registerUser", "--help")
    assert command.code == 0
    assert command.out.startswith(
        "Usage: meerkatctl account registerUser --domain DOMAINNAME --password STRING "
        "[--username USERNAME]\n"
    )
    assert "--domain     DomainName!" in command.out


async def test_bad_command_lines_exit_1(node: Node) -> None:
    cases = [
        (("nope",), "Unknown category 'nope'"),
        (("account", "nope"), "Unknown command 'nope'"),
        (("account", "countUsers"), "Missing required arguments: --domain"),
        (("account", "countUsers", "--domain"), "Missing value for --domain"),
        (("account", "countUsers", "--bogus", "x"), "Unknown argument --bogus"),
        (("account", "countUsers", "localhost"), "Unexpected argument 'localhost'"),
        (("--colour", "account"), "Unknown option --colour"),
    ]
    for argv, message in cases:
        run = await node.ctl(*argv)
        assert run.code == 1, argv
        assert message in run.err, (argv, run.err)


async def test_an_unreachable_node_exits_3() -> None:
    out, err = io.StringIO(), io.StringIO()
    env = {"MEERKATCTL_URL": closed_port_url()}
    code = await asyncio.to_thread(ctl.main, ["status"], env=env, stdout=out, stderr=err)
    assert code == 3
    assert "cannot reach the node" in err.getvalue()
    code = await asyncio.to_thread(ctl.main, [], env=env, stdout=out, stderr=err)
    assert code == 2


async def test_basic_auth_from_options_or_environment(secured: Node) -> None:
    run = await secured.ctl("--user", "admin", "--password", "secret", "status")
    assert run.code == 0
    env = {"MEERKATCTL_URL": secured.url, "MEERKATCTL_USER": "admin"}
    env["MEERKATCTL_PASSWORD"] = "secret"
    assert (await secured.ctl("status", env=env)).code == 0
    run = await secured.ctl("--user", "admin", "--password", "wrong", "status")
    assert run.code == 1
    assert run.json == {
        "errors": [
            {
                "extensions": {"code": "wrong_credentials"},
                "message": "The provided credentials are wrong",
            }
        ]
    }


def test_lists_and_input_objects_are_json_and_types_render() -> None:
    list_arg = commands.Arg(
        "names",
        {
            "kind": "LIST",
            "name": None,
            "ofType": {"kind": "SCALAR", "name": "String", "ofType": None},
        },
        None,
        False,
    )
    assert commands.convert(list_arg, '["global", "cets"]') == ["global", "cets"]
    assert commands.render_type(list_arg.type_ref) == "[String]"
    obj = commands.Arg("o", {"kind": "INPUT_OBJECT", "name": "Opts", "ofType": None}, None, False)
    assert commands.convert(obj, '{"a": 1}') == {"a": 1}
    flag = commands.Arg("f", {"kind": "SCALAR", "name": "Boolean", "ofType": None}, None, False)
    assert commands.convert(flag, "true") is True
    with pytest.raises(commands.UsageError):
        commands.convert(flag, "yes")
    enum = commands.Arg("a", {"kind": "ENUM", "name": "Action", "ofType": None}, None, False)
    assert commands.convert(enum, "CONNECT") == "CONNECT"


def test_a_type_seen_twice_on_the_path_is_cut_to_typename() -> None:
    def ref(name: str, kind: str = "OBJECT") -> dict[str, object]:
        return {"kind": kind, "name": name, "ofType": None}

    types = {
        "Node": {
            "kind": "OBJECT",
            "name": "Node",
            "fields": [
                {"name": "id", "args": [], "type": ref("ID", "SCALAR")},
                {"name": "parent", "args": [], "type": ref("Node")},
                {"name": "item", "args": [], "type": ref("Item", "UNION")},
            ],
        },
        "Item": {
            "kind": "UNION",
            "name": "Item",
            "possibleTypes": [ref("Leaf")],
        },
        "Leaf": {
            "kind": "OBJECT",
            "name": "Leaf",
            "fields": [{"name": "v", "args": [], "type": ref("Int", "SCALAR")}],
        },
        "ID": {"kind": "SCALAR", "name": "ID"},
        "Int": {"kind": "SCALAR", "name": "Int"},
    }
    assert commands.selection_set(types, ref("Node"), ()) == (
        "{ id parent { __typename } item { ... on Leaf { v } } }"
    )


async def test_enum_arguments_are_passed_by_name(node: Node) -> None:
    import logging

    logger = logging.getLogger("meerkat")
    saved = logger.level
    try:
        run = await node.ctl("server", "setLoglevel", "--level", "DEBUG")
        assert (run.code, run.json) == (
            0,
            {"data": {"server": {"setLoglevel": "Log level successfully set."}}},
        )
        run = await node.ctl("server", "getLoglevel")
        assert run.json == {"data": {"server": {"getLoglevel": "DEBUG"}}}
        run = await node.ctl("server", "setLoglevel", "--level", "LOUD")
        assert run.code == 1
        assert run.json["errors"][0]["extensions"]["code"] == "input_coercion"  # type: ignore[index]
    finally:
        logger.setLevel(saved)


async def test_input_object_lists_are_json_arguments(node: Node) -> None:
    await node.kernel.user("alice@localhost")
    await node.kernel.user("bob@localhost")
    await node.kernel.start_modules("mod_roster")
    try:
        contacts = '[{"jid": "bob@localhost", "name": "Bob", "groups": ["G"]}]'
        run = await node.ctl(
            "roster", "addContacts", "--user", "alice@localhost", "--contacts", contacts
        )
        assert (run.code, run.json) == (
            0,
            {"data": {"roster": {"addContacts": ["Contact added successfully"]}}},
        )
        run = await node.ctl("roster", "listContacts", "--user", "alice@localhost")
        assert run.json == {
            "data": {
                "roster": {
                    "listContacts": [
                        {
                            "jid": "bob@localhost",
                            "name": "Bob",
                            "groups": ["G"],
                            "subscription": "NONE",
                            "ask": "NONE",
                        }
                    ]
                }
            }
        }
        run = await node.ctl("roster", "addContacts", "--user", "a@localhost", "--contacts", "[")
        assert run.code == 1 and "Invalid value for --contacts" in run.err
    finally:
        await node.kernel.stop_modules()
