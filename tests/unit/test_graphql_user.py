"""The user GraphQL endpoint (port 5561 in MongooseIM): Basic auth with the user's JID."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from test_api_support import Kernel

from meerkat.graphql import make_graphql_app
from meerkat.xmpp.jid import Jid

URL = "/api/graphql"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ALICE = basic("alice@localhost", "secret")


@pytest.fixture
async def kernel() -> Kernel:
    kernel = Kernel()
    await kernel.user("alice@localhost", "secret")
    await kernel.user("bob@localhost", "secret")
    return kernel


@pytest.fixture
async def client(kernel: Kernel) -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(make_graphql_app(kernel.ctx, schema_endpoint="user")))
    await client.start_server()
    yield client
    await client.close()


async def post(
    client: TestClient, query: str, headers: dict[str, str] | None = None, **variables: Any
) -> tuple[int, Any]:
    body = json.dumps({"query": query, "variables": variables})
    response = await client.post(URL, data=body, headers=headers or {})
    return response.status, await response.json()


async def test_check_auth_with_and_without_credentials(client: TestClient) -> None:
    query = "{ checkAuth { username authStatus } }"
    assert await post(client, query, ALICE) == (
        200,
        {"data": {"checkAuth": {"username": "alice@localhost", "authStatus": "AUTHORIZED"}}},
    )
    assert await post(client, query) == (
        200,
        {"data": {"checkAuth": {"username": None, "authStatus": "UNAUTHORIZED"}}},
    )


async def test_a_full_jid_login_acts_as_the_bare_user(client: TestClient) -> None:
    status, reply = await post(
        client, "{ checkAuth { username } }", basic("Alice@localhost/laptop", "secret")
    )
    assert (status, reply) == (200, {"data": {"checkAuth": {"username": "alice@localhost"}}})


async def test_wrong_password_or_unknown_user_is_401(client: TestClient) -> None:
    for headers in (basic("alice@localhost", "nope"), basic("x@localhost", "s"), basic("@", "s")):
        status, reply = await post(client, "{ checkAuth { authStatus } }", headers)
        assert status == 401
        assert reply["errors"][0]["extensions"] == {"code": "wrong_credentials"}


async def test_without_credentials_operations_are_401(client: TestClient) -> None:
    status, reply = await post(client, "{ session { countResources } }")
    assert status == 401
    assert reply["errors"][0]["extensions"] == {"code": "no_permissions"}


async def test_sessions_of_the_user(client: TestClient, kernel: Kernel) -> None:
    await kernel.login("alice@localhost/b")
    await kernel.login("alice@localhost/a")
    await kernel.login("bob@localhost/x")
    query = "{ session { listResources countResources listSessions { user } } }"
    status, reply = await post(client, query, ALICE)
    assert status == 200
    assert reply == {
        "data": {
            "session": {
                "listResources": ["a", "b"],
                "countResources": 2,
                "listSessions": [{"user": "alice@localhost/a"}, {"user": "alice@localhost/b"}],
            }
        }
    }


async def test_send_message_from_self_and_not_from_others(
    client: TestClient, kernel: Kernel
) -> None:
    bob = await kernel.login("bob@localhost/x")
    query = """mutation ($f: JID, $t: JID!) {
        stanza { sendMessage(from: $f, to: $t, body: "hi") { id } } }"""
    status, reply = await post(client, query, ALICE, t="bob@localhost")
    assert status == 200 and reply["data"]["stanza"]["sendMessage"]["id"]
    assert bob.delivered[0].element.attrs["from"] == "alice@localhost"
    status, reply = await post(client, query, ALICE, f="bob@localhost", t="bob@localhost")
    assert reply["errors"][0]["extensions"]["code"] == "invalid_sender"
    assert reply["errors"][0]["message"] == "Sender's JID is different from the user's JID"


async def test_send_stanza_fills_in_the_sender(client: TestClient, kernel: Kernel) -> None:
    bob = await kernel.login("bob@localhost/x")
    query = "mutation ($s: XmlElement) { stanza { sendStanza(stanza: $s) { id } } }"
    stanza = "<message to='bob@localhost' id='s1'><body>yo</body></message>"
    assert await post(client, query, ALICE, s=stanza) == (
        200,
        {"data": {"stanza": {"sendStanza": {"id": "s1"}}}},
    )
    assert bob.delivered[0].element.attrs["from"] == "alice@localhost"
    forged = "<message from='bob@localhost' to='bob@localhost'/>"
    _, reply = await post(client, query, ALICE, s=forged)
    assert reply["errors"][0]["extensions"]["code"] == "invalid_sender"


async def test_change_password_and_unregister(client: TestClient, kernel: Kernel) -> None:
    change = "mutation ($p: String!) { account { changePassword(newPassword: $p) } }"
    _, reply = await post(client, change, ALICE, p="")
    assert reply["errors"][0]["message"] == "Empty password"
    _, reply = await post(client, change, ALICE, p="new")
    assert reply == {"data": {"account": {"changePassword": "Password changed"}}}
    new_login = basic("alice@localhost", "new")
    _, reply = await post(client, "mutation { account { unregister } }", new_login)
    assert reply == {
        "data": {"account": {"unregister": "User alice@localhost successfully unregistered"}}
    }
    assert not await kernel.accounts.exists(Jid.parse("alice@localhost"))
