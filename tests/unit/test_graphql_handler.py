"""The admin GraphQL endpoint over HTTP: MongooseIM's envelope and every error path."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from test_api_support import NODE, Kernel

from meerkat.graphql import make_graphql_app

URL = "/api/graphql"
REGISTER = """mutation ($domain: DomainName!, $username: UserName, $password: String!) {
  account { registerUser(domain: $domain, username: $username, password: $password) {
    message jid } } }"""


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def kernel() -> Kernel:
    return Kernel()


async def _client(kernel: Kernel, **options: Any) -> TestClient:
    client = TestClient(TestServer(make_graphql_app(kernel.ctx, **options)))
    await client.start_server()
    return client


@pytest.fixture
async def client(kernel: Kernel) -> AsyncIterator[TestClient]:
    client = await _client(kernel)
    yield client
    await client.close()


@pytest.fixture
async def auth_client(kernel: Kernel) -> AsyncIterator[TestClient]:
    client = await _client(kernel, username="admin", password="secret")
    yield client
    await client.close()


async def post(client: TestClient, body: object, **kwargs: Any) -> tuple[int, Any]:
    data = body if isinstance(body, str) else json.dumps(body)
    response = await client.post(URL, data=data, **kwargs)
    return response.status, await response.json()


async def test_register_user_returns_data_envelope(client: TestClient) -> None:
    variables = {"domain": "localhost", "username": "alice", "password": "pw"}
    status, body = await post(client, {"query": REGISTER, "variables": variables})
    assert status == 200
    assert body == {
        "data": {
            "account": {
                "registerUser": {
                    "message": "User alice@localhost successfully registered",
                    "jid": "alice@localhost",
                }
            }
        }
    }


async def test_variables_may_be_a_json_string(client: TestClient) -> None:
    variables = json.dumps({"domain": "localhost", "username": "bob", "password": "pw"})
    status, body = await post(client, {"query": REGISTER, "variables": variables})
    assert status == 200
    assert body["data"]["account"]["registerUser"]["jid"] == "bob@localhost"


async def test_resolver_error_is_200_with_null_data_code_and_path(
    client: TestClient, kernel: Kernel
) -> None:
    await kernel.user("alice@localhost")
    variables = {"domain": "localhost", "username": "alice", "password": "pw"}
    status, body = await post(client, {"query": REGISTER, "variables": variables})
    assert status == 200
    assert body == {
        "data": {"account": {"registerUser": None}},
        "errors": [
            {
                "message": f"User alice@localhost already registered at node {NODE}",
                "extensions": {"code": "exists", "jid": "alice@localhost"},
                "path": ["account", "registerUser"],
            }
        ],
    }


async def test_queries_with_literal_arguments(client: TestClient, kernel: Kernel) -> None:
    await kernel.user("alice@localhost")
    query = '{ account { countUsers(domain: "localhost") listUsers(domain: "localhost") } }'
    status, body = await post(client, {"query": query})
    assert status == 200
    assert body == {"data": {"account": {"countUsers": 1, "listUsers": ["alice@localhost"]}}}


async def test_get_requests_are_served_too(client: TestClient) -> None:
    response = await client.get(URL, params={"query": "{ server { status { statusCode } } }"})
    assert response.status == 200
    assert await response.json() == {"data": {"server": {"status": {"statusCode": "RUNNING"}}}}


async def test_get_without_query_from_a_browser_gives_an_html_page(client: TestClient) -> None:
    response = await client.get(URL, headers={"Accept": "text/html"})
    assert response.status == 200
    assert "<html>" in await response.text()


async def test_no_query_supplied(client: TestClient) -> None:
    for body in ({}, {"query": ""}, ""):
        status, reply = await post(client, body)
        assert status == 400
        assert reply == {
            "errors": [
                {
                    "extensions": {"code": "no_query_supplied"},
                    "message": "The query was not supplied in the request body",
                }
            ]
        }
    response = await client.get(URL)
    assert response.status == 400


async def test_invalid_json_body(client: TestClient) -> None:
    for raw in ("{not json", "[1, 2]"):
        status, reply = await post(client, raw)
        assert status == 400
        assert reply["errors"] == [
            {
                "extensions": {"code": "invalid_json_body"},
                "message": "The request JSON body is invalid",
            }
        ]


async def test_variables_invalid_json(client: TestClient) -> None:
    status, reply = await post(client, {"query": REGISTER, "variables": "{oops"})
    assert status == 400
    assert reply["errors"] == [
        {
            "extensions": {"code": "variables_invalid_json"},
            "message": "The variables' JSON is invalid",
        }
    ]


async def test_parse_error(client: TestClient) -> None:
    status, reply = await post(client, {"query": "{ account { "})
    assert status == 400
    [error] = reply["errors"]
    assert error["extensions"] == {"code": "parser_error"}
    assert error["message"].startswith("Cannot parse line 1 because of ")


async def test_validation_error_for_an_unknown_field(client: TestClient) -> None:
    status, reply = await post(client, {"query": "{ account { nope } }"})
    assert status == 400
    [error] = reply["errors"]
    assert error["extensions"] == {"code": "validation_error"}
    assert "nope" in error["message"]


async def test_invalid_scalar_variable_is_input_coercion(client: TestClient) -> None:
    query = "query ($u: JID!) { account { checkUser(user: $u) { exist } } }"
    status, reply = await post(client, {"query": query, "variables": {"u": "a@b@c"}})
    assert status == 400
    [error] = reply["errors"]
    assert error["extensions"] == {"code": "input_coercion"}
    assert "failed_to_parse_jid" in error["message"]


async def test_invalid_scalar_literal_is_input_coercion(client: TestClient) -> None:
    query = '{ session { kickUser(user: "alice@localhost/res") { jid } } }'
    status, reply = await post(client, {"query": query.replace("{ session", "mutation { session")})
    assert status == 400
    [error] = reply["errors"]
    assert error["extensions"] == {"code": "input_coercion"}
    assert "jid_with_resource" in error["message"]


@pytest.mark.parametrize(
    ("type_name", "value", "reason"),
    [
        ("FullJID", "alice@localhost", "jid_without_resource"),
        ("DomainName", "", "failed_to_parse_domain"),
        ("UserName", "a:b", "failed_to_parse_username"),
        ("PosInt", 0, "Value is not a positive integer"),
        ("XmlElement", "<a>", "failed_to_parse_xml"),
    ],
)
async def test_scalars_validate_their_input(
    client: TestClient, type_name: str, value: object, reason: str
) -> None:
    argument = {
        "FullJID": ("mutation", "session { kickUserSession(user: $v) { jid } }"),
        "DomainName": ("query", "account { countUsers(domain: $v) }"),
        "UserName": (
            "mutation",
            'account { registerUser(domain: "localhost", username: $v, password: "p") { jid } }',
        ),
        "PosInt": ("query", 'session { getUserResource(user: "a@localhost", number: $v) }'),
        "XmlElement": ("mutation", "stanza { sendStanza(stanza: $v) { id } }"),
    }[type_name]
    suffix = "!" if type_name != "XmlElement" else ""
    query = f"{argument[0]} ($v: {type_name}{suffix}) {{ {argument[1]} }}"
    status, reply = await post(client, {"query": query, "variables": {"v": value}})
    assert status == 400, reply
    assert reason in reply["errors"][0]["message"]
    assert reply["errors"][0]["extensions"] == {"code": "input_coercion"}


async def test_operation_name_selects_the_operation(client: TestClient) -> None:
    query = "query A { server { status { statusCode } } } query B { checkAuth { authType } }"
    status, reply = await post(client, {"query": query, "operationName": "B"})
    assert (status, reply) == (200, {"data": {"checkAuth": {"authType": "ADMIN"}}})
    status, reply = await post(client, {"query": query})
    assert status == 400
    status, reply = await post(client, {"query": query, "operationName": "C"})
    assert status == 400


async def test_without_configured_login_every_request_is_admin(client: TestClient) -> None:
    status, reply = await post(
        client, {"query": "{ checkAuth { domain authStatus authType } }"}, headers=basic("x", "y")
    )
    assert status == 200
    assert reply == {
        "data": {"checkAuth": {"domain": None, "authStatus": "AUTHORIZED", "authType": "ADMIN"}}
    }


async def test_right_basic_credentials_are_admin(auth_client: TestClient) -> None:
    status, reply = await post(
        auth_client, {"query": "{ checkAuth { authStatus } }"}, headers=basic("admin", "secret")
    )
    assert (status, reply) == (200, {"data": {"checkAuth": {"authStatus": "AUTHORIZED"}}})


async def test_wrong_credentials_are_401(auth_client: TestClient) -> None:
    for headers in (
        basic("admin", "wrong"),
        basic("root", "secret"),
        {"Authorization": "Bearer x"},
    ):
        status, reply = await post(
            auth_client, {"query": "{ checkAuth { authStatus } }"}, headers=headers
        )
        assert status == 401
        assert reply == {
            "errors": [
                {
                    "extensions": {"code": "wrong_credentials"},
                    "message": "The provided credentials are wrong",
                }
            ]
        }


async def test_malformed_authorization_header_is_401(auth_client: TestClient) -> None:
    for value in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode()):
        status, reply = await post(
            auth_client, {"query": "{ checkAuth { authStatus } }"}, headers={"Authorization": value}
        )
        assert status == 401
        assert reply["errors"][0]["extensions"] == {"code": "request_error"}
        assert reply["errors"][0]["message"].startswith("Malformed authorization header")


async def test_without_credentials_only_check_auth_runs(auth_client: TestClient) -> None:
    status, reply = await post(auth_client, {"query": "{ checkAuth { authStatus authType } }"})
    assert status == 200
    assert reply == {
        "data": {"checkAuth": {"authStatus": "UNAUTHORIZED", "authType": "UNAUTHORIZED"}}
    }
    status, reply = await post(auth_client, {"query": "query Q { server { status { message } } }"})
    assert status == 401
    assert reply == {
        "errors": [
            {
                "extensions": {"code": "no_permissions"},
                "message": "Cannot execute query Q without permissions",
            }
        ]
    }


async def test_disabled_category_gives_an_error(kernel: Kernel) -> None:
    client = await _client(kernel, allowed_categories=["server"])
    try:
        status, reply = await post(
            client,
            {"query": '{ server { status { statusCode } } account { countUsers(domain: "x") } }'},
        )
    finally:
        await client.close()
    assert status == 200
    assert reply["data"] == {"server": {"status": {"statusCode": "RUNNING"}}, "account": None}
    assert reply["errors"] == [
        {
            "message": "Category disabled",
            "extensions": {"code": "category_disabled"},
            "path": ["account"],
        }
    ]


async def test_a_crashing_resolver_is_resolver_crash(
    client: TestClient, kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def boom(_domain: str) -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(kernel.accounts, "count_users", boom)
    status, reply = await post(client, {"query": '{ account { countUsers(domain: "localhost") } }'})
    assert status == 200
    assert reply["data"] == {"account": None}
    assert reply["errors"][0]["extensions"] == {"code": "resolver_crash"}
    assert reply["errors"][0]["message"] == "Unexpected error resolver crash"


async def test_an_internal_crash_is_500(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import meerkat.graphql.handler as handler

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(handler, "execute", broken)
    status, reply = await post(client, {"query": "{ checkAuth { authType } }"})
    assert status == 500
    assert reply == {
        "errors": [
            {
                "extensions": {"code": "internal_server_error"},
                "message": "GraphQL Internal Server Error",
            }
        ]
    }


async def test_session_and_stanza_operations_end_to_end(client: TestClient, kernel: Kernel) -> None:
    await kernel.user("alice@localhost")
    await kernel.user("bob@localhost")
    bob = await kernel.login("bob@localhost/pc")
    send = """mutation { stanza { sendMessage(from: "alice@localhost", to: "bob@localhost",
              body: "Hi!") { id } } }"""
    status, reply = await post(client, {"query": send})
    assert status == 200
    assert reply["data"]["stanza"]["sendMessage"]["id"] == bob.delivered[0].element.attrs["id"]
    listing = "{ session { listSessions { user node priority } countSessions } }"
    status, reply = await post(client, {"query": listing})
    assert reply == {
        "data": {
            "session": {
                "listSessions": [{"user": "bob@localhost/pc", "node": NODE, "priority": 0}],
                "countSessions": 1,
            }
        }
    }
    kick = """mutation { session { kickUserSession(user: "bob@localhost/pc") {
              jid kicked code message } } }"""
    status, reply = await post(client, {"query": kick})
    assert reply["data"]["session"]["kickUserSession"] == {
        "jid": "bob@localhost/pc",
        "kicked": True,
        "code": None,
        "message": "Session kicked",
    }


async def test_cets_without_a_cluster_is_deps_not_loaded(client: TestClient) -> None:
    status, reply = await post(client, {"query": "{ cets { tableInfo { tableName } } }"})
    assert status == 200
    assert reply == {
        "data": {"cets": {"tableInfo": None}},
        "errors": [
            {
                "message": "Some of the required internal databases are not loaded",
                "extensions": {
                    "code": "deps_not_loaded",
                    "not_loaded_internal_databases": ["cets"],
                },
                "path": ["cets", "tableInfo"],
            }
        ],
    }


async def test_cets_status_of_a_cluster(client: TestClient, kernel: Kernel) -> None:
    from test_api_cets import SYSTEM_INFO, TABLES, FakeCluster

    kernel.ctx.cluster = FakeCluster()
    fields = " ".join(SYSTEM_INFO)
    query = (
        f"{{ cets {{ systemInfo {{ {fields} }} tableInfo {{ tableName memory size nodes }} }} }}"
    )
    status, reply = await post(client, {"query": query})
    assert status == 200
    assert reply == {"data": {"cets": {"systemInfo": SYSTEM_INFO, "tableInfo": TABLES}}}


async def test_datetime_and_xml_scalars_round_trip(client: TestClient, kernel: Kernel) -> None:
    await kernel.user("alice@localhost")
    set_last = """mutation { last { setLast(user: "alice@localhost",
                  timestamp: "2024-01-02T03:04:05Z", status: "away") {
                  user timestamp status } } }"""
    status, reply = await post(client, {"query": set_last})
    assert (status, reply) == (
        200,
        {
            "data": {
                "last": {
                    "setLast": {
                        "user": "alice@localhost",
                        "timestamp": "2024-01-02T03:04:05Z",
                        "status": "away",
                    }
                }
            }
        },
    )
    old = '{ last { listOldUsers(timestamp: "2025-01-01T00:00:00+02:00") { jid timestamp } } }'
    status, reply = await post(client, {"query": old})
    assert reply["data"]["last"]["listOldUsers"] == [
        {"jid": "alice@localhost", "timestamp": "2024-01-02T03:04:05Z"}
    ]
    bad = '{ last { listOldUsers(timestamp: "yesterday") { jid } } }'
    status, reply = await post(client, {"query": bad})
    assert status == 400 and reply["errors"][0]["extensions"]["code"] == "input_coercion"
    set_private = """mutation ($x: XmlElement!) { private {
                     setPrivate(user: "alice@localhost", elementString: $x) } }"""
    status, reply = await post(
        client, {"query": set_private, "variables": {"x": "<a xmlns='n:1'><b/></a>"}}
    )
    assert reply == {"data": {"private": {"setPrivate": '<a xmlns="n:1"><b/></a>'}}}
    get_private = """{ private {
        getPrivate(user: "alice@localhost", element: "a", nameSpace: "n:1") } }"""
    status, reply = await post(client, {"query": get_private})
    assert reply == {"data": {"private": {"getPrivate": '<a xmlns="n:1"><b/></a>'}}}


async def test_a_list_with_failed_items_reports_each_at_its_index(
    client: TestClient, kernel: Kernel
) -> None:
    await kernel.user("alice@localhost")
    await kernel.user("bob@localhost")
    await kernel.start_modules("mod_roster")
    try:
        query = """mutation ($c: [ContactInput!]!) { roster {
                   addContacts(user: "alice@localhost", contacts: $c) } }"""
        contacts = [{"jid": "bob@localhost", "name": "B"}, {"jid": "x@localhost", "name": "X"}]
        status, reply = await post(client, {"query": query, "variables": {"c": contacts}})
    finally:
        await kernel.stop_modules()
    assert status == 200
    assert reply == {
        "data": {"roster": {"addContacts": ["Contact added successfully", None]}},
        "errors": [
            {
                "message": "The user x@localhost does not exist",
                "extensions": {"code": "user_not_exist", "contact": "x@localhost"},
                "path": ["roster", "addContacts", 1],
            }
        ],
    }
