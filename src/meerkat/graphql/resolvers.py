"""Resolvers of the admin schema: each GraphQL field maps to one `meerkat.api` function.

A top-level field of the query or mutation type is a *category* (``account``, ``session``
...); its resolver only checks that the category is enabled on this endpoint. The fields of
a category type call the API; `ApiError`s become GraphQL errors with ``extensions.code``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLObjectType, GraphQLResolveInfo, GraphQLSchema

from ..api import ApiContext, ApiError, account, cets, server, session, stanza, stat

__all__ = ["ADMIN_FIELDS", "RequestContext", "attach_resolvers"]

Resolver = Callable[[ApiContext, dict[str, Any]], Awaitable[Any]]
Info = GraphQLResolveInfo[Any]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The GraphQL context of one request."""

    api: ApiContext
    authorized: bool
    allowed_categories: Collection[str] | None


# (category type, field) -> resolver. A field in the schema without an entry here is a
# start-up error, so the schema and this table cannot drift apart.
ADMIN_FIELDS: dict[tuple[str, str], Resolver] = {
    # account
    ("AccountAdminQuery", "listUsers"): lambda c, a: account.list_users(c, a["domain"]),
    ("AccountAdminQuery", "countUsers"): lambda c, a: account.count_users(c, a["domain"]),
    ("AccountAdminQuery", "checkPassword"): lambda c, a: account.check_password(
        c, a["user"], a["password"]
    ),
    ("AccountAdminQuery", "checkUser"): lambda c, a: account.check_user(c, a["user"]),
    ("AccountAdminMutation", "registerUser"): lambda c, a: account.register_user(
        c, a["domain"], a.get("username"), a["password"]
    ),
    ("AccountAdminMutation", "removeUser"): lambda c, a: account.remove_user(c, a["user"]),
    ("AccountAdminMutation", "banUser"): lambda c, a: account.ban_user(c, a["user"], a["reason"]),
    ("AccountAdminMutation", "changeUserPassword"): lambda c, a: account.change_user_password(
        c, a["user"], a["newPassword"]
    ),
    # session
    ("SessionAdminQuery", "listSessions"): lambda c, a: session.list_sessions(c, a.get("domain")),
    ("SessionAdminQuery", "countSessions"): lambda c, a: session.count_sessions(c, a.get("domain")),
    ("SessionAdminQuery", "listUserSessions"): lambda c, a: session.list_user_sessions(
        c, a["user"]
    ),
    ("SessionAdminQuery", "countUserResources"): lambda c, a: session.count_user_resources(
        c, a["user"]
    ),
    ("SessionAdminQuery", "getUserResource"): lambda c, a: session.get_user_resource(
        c, a["user"], a["number"]
    ),
    ("SessionAdminMutation", "kickUserSession"): lambda c, a: session.kick_user_session(
        c, a["user"], a.get("reason")
    ),
    ("SessionAdminMutation", "kickUser"): lambda c, a: session.kick_user(
        c, a["user"], a.get("reason")
    ),
    # stanza
    ("StanzaAdminMutation", "sendMessage"): lambda c, a: stanza.send_message(
        c, a["from"], a["to"], a["body"]
    ),
    ("StanzaAdminMutation", "sendMessageHeadLine"): lambda c, a: stanza.send_message_headline(
        c, a["from"], a["to"], a.get("subject"), a.get("body")
    ),
    ("StanzaAdminMutation", "sendStanza"): lambda c, a: _send_stanza(c, a),
    # cets, server, stat
    ("CETSAdminQuery", "systemInfo"): lambda c, a: cets.system_info(c),
    ("CETSAdminQuery", "tableInfo"): lambda c, a: cets.table_info(c),
    ("ServerAdminQuery", "status"): lambda c, a: server.status(c),
    ("StatsAdminQuery", "globalStats"): lambda c, a: stat.global_stats(c),
    ("StatsAdminQuery", "domainStats"): lambda c, a: stat.domain_stats(c, a["domain"]),
}


async def _send_stanza(ctx: ApiContext, args: dict[str, Any]) -> Any:
    if args.get("stanza") is None:
        raise ApiError("no_stanza", "Missing stanza")
    return await stanza.send_stanza(ctx, args["stanza"])


def _api_field(fn: Resolver) -> Callable[..., Awaitable[Any]]:
    async def resolve(_root: Any, info: Info, **args: Any) -> Any:
        return await fn(info.context.api, args)

    return resolve


def _category(_root: Any, info: Info) -> dict[str, Any]:
    allowed = info.context.allowed_categories
    if allowed is not None and info.field_name not in allowed:
        raise ApiError("category_disabled", "Category disabled")
    return {}


def _check_auth(_root: Any, info: Info) -> dict[str, Any]:
    if info.context.authorized:
        return {"domain": None, "authStatus": "AUTHORIZED", "authType": "ADMIN"}
    return {"domain": None, "authStatus": "UNAUTHORIZED", "authType": "UNAUTHORIZED"}


def attach_resolvers(schema: GraphQLSchema, fields: dict[tuple[str, str], Resolver]) -> None:
    """Set the resolvers of the root and category fields.

    ValueError for a field without resolver, and for a query and a mutation with the same name
    in one category (meerkatctl could not tell them apart).
    """
    roots = [t for t in (schema.query_type, schema.mutation_type) if t is not None]
    commands: set[tuple[str, str]] = set()
    for root in roots:
        for name, field in root.fields.items():
            if name == "checkAuth":
                field.resolve = _check_auth
                continue
            field.resolve = _category
            category = field.type
            if not isinstance(category, GraphQLObjectType):
                raise ValueError(f"{root.name}.{name}: a category must be an object type")
            for op_name, op_field in category.fields.items():
                if (name, op_name) in commands:
                    raise ValueError(f"{name}.{op_name}: both a query and a mutation")
                commands.add((name, op_name))
                fn = fields.get((category.name, op_name))
                if fn is None:
                    raise ValueError(f"{category.name}.{op_name}: no resolver")
                op_field.resolve = _api_field(fn)
