"""Resolvers of the admin and user schemas: each field maps to one `meerkat.api` function.

A top-level field of the query or mutation type is a *category* (``account``, ``session``
...); its resolver only checks that the category is enabled on this endpoint. The fields of
a category type call the API; `ApiError`s become GraphQL errors with ``extensions.code``.
Admin resolvers get ``(api, args)``, user resolvers ``(api, user, args)`` with the
authenticated user's bare JID.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLObjectType, GraphQLResolveInfo, GraphQLSchema

from ..api import (
    ApiContext,
    ApiError,
    account,
    cets,
    last,
    offline,
    private,
    roster,
    server,
    session,
    stanza,
    stat,
)
from ..api import user as user_api
from ..xmpp.jid import Jid

__all__ = ["ADMIN_FIELDS", "USER_FIELDS", "RequestContext", "attach_resolvers"]

Resolver = Callable[[ApiContext, dict[str, Any]], Awaitable[Any]]
UserResolver = Callable[[ApiContext, Jid, dict[str, Any]], Awaitable[Any]]
Info = GraphQLResolveInfo[Any]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The GraphQL context of one request."""

    api: ApiContext
    authorized: bool
    allowed_categories: Collection[str] | None
    user: Jid | None = None
    """The authenticated user (user endpoint only)."""


# (category type, field) -> resolver. A field in the schema without an entry here is a
# start-up error, so the schema and this table cannot drift apart.
ADMIN_FIELDS: dict[tuple[str, str], Resolver] = {
    # account
    ("AccountAdminQuery", "listUsers"): lambda c, a: account.list_users(c, a["domain"]),
    ("AccountAdminQuery", "countUsers"): lambda c, a: account.count_users(c, a["domain"]),
    ("AccountAdminQuery", "checkPassword"): lambda c, a: account.check_password(
        c, a["user"], a["password"]
    ),
    ("AccountAdminQuery", "checkPasswordHash"): lambda c, a: account.check_password_hash(
        c, a["user"], a["passwordHash"], a["hashMethod"]
    ),
    ("AccountAdminQuery", "checkUser"): lambda c, a: account.check_user(c, a["user"]),
    ("AccountAdminMutation", "registerUser"): lambda c, a: account.register_user(
        c, a["domain"], a.get("username"), a["password"]
    ),
    ("AccountAdminMutation", "importUsers"): lambda c, a: account.import_users(c, a["filename"]),
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
    # last, private
    ("LastAdminQuery", "getLast"): lambda c, a: last.get_last(c, a["user"]),
    ("LastAdminQuery", "countActiveUsers"): lambda c, a: last.count_active_users(
        c, a["domain"], a.get("timestamp")
    ),
    ("LastAdminQuery", "listOldUsers"): lambda c, a: last.list_old_users(
        c, a.get("domain"), a["timestamp"]
    ),
    ("LastAdminMutation", "setLast"): lambda c, a: last.set_last(
        c, a["user"], a.get("timestamp"), a["status"]
    ),
    ("LastAdminMutation", "removeOldUsers"): lambda c, a: last.remove_old_users(
        c, a.get("domain"), a["timestamp"]
    ),
    ("PrivateAdminQuery", "getPrivate"): lambda c, a: private.get_private(
        c, a["user"], a["element"], a["nameSpace"]
    ),
    ("PrivateAdminMutation", "setPrivate"): lambda c, a: private.set_private(
        c, a["user"], a["elementString"]
    ),
    # roster
    ("RosterAdminQuery", "listContacts"): lambda c, a: roster.list_contacts(c, a["user"]),
    ("RosterAdminQuery", "getContact"): lambda c, a: roster.get_contact(c, a["user"], a["contact"]),
    ("RosterAdminMutation", "addContact"): lambda c, a: roster.add_contact(
        c, a["user"], a["contact"], a.get("name"), a.get("groups")
    ),
    ("RosterAdminMutation", "addContacts"): lambda c, a: _each(
        roster.add_contacts(c, a["user"], a["contacts"])
    ),
    ("RosterAdminMutation", "subscription"): lambda c, a: roster.subscription(
        c, a["user"], a["contact"], a.get("action") or ""
    ),
    ("RosterAdminMutation", "deleteContact"): lambda c, a: roster.delete_contact(
        c, a["user"], a["contact"]
    ),
    ("RosterAdminMutation", "deleteContacts"): lambda c, a: _each(
        roster.delete_contacts(c, a["user"], a["contacts"])
    ),
    ("RosterAdminMutation", "setMutualSubscription"): lambda c, a: roster.set_mutual_subscription(
        c, a["userA"], a["userB"], a["action"]
    ),
    ("RosterAdminMutation", "subscribeToAll"): lambda c, a: _each(
        roster.subscribe_to_all(c, a["user"], a["contacts"])
    ),
    ("RosterAdminMutation", "subscribeAllToAll"): lambda c, a: _each(
        roster.subscribe_all_to_all(c, a["contacts"])
    ),
    # offline
    ("OfflineAdminMutation", "deleteExpiredMessages"): lambda c, a: offline.delete_expired_messages(
        c, a["domain"]
    ),
    ("OfflineAdminMutation", "deleteOldMessages"): lambda c, a: offline.delete_old_messages(
        c, a["domain"], a["days"]
    ),
    # cets, server, stat
    ("CETSAdminQuery", "systemInfo"): lambda c, a: cets.system_info(c),
    ("CETSAdminQuery", "tableInfo"): lambda c, a: cets.table_info(c),
    ("ServerAdminQuery", "status"): lambda c, a: server.status(c),
    ("ServerAdminQuery", "getLoglevel"): lambda c, a: server.get_loglevel(c),
    ("ServerAdminMutation", "setLoglevel"): lambda c, a: server.set_loglevel(c, a["level"]),
    ("StatsAdminQuery", "globalStats"): lambda c, a: stat.global_stats(c),
    ("StatsAdminQuery", "domainStats"): lambda c, a: stat.domain_stats(c, a["domain"]),
}


USER_FIELDS: dict[tuple[str, str], UserResolver] = {
    ("AccountUserMutation", "unregister"): lambda c, u, a: user_api.unregister(c, u),
    ("AccountUserMutation", "changePassword"): lambda c, u, a: user_api.change_password(
        c, u, a["newPassword"]
    ),
    ("SessionUserQuery", "listResources"): lambda c, u, a: user_api.list_resources(c, u),
    ("SessionUserQuery", "countResources"): lambda c, u, a: user_api.count_resources(c, u),
    ("SessionUserQuery", "listSessions"): lambda c, u, a: user_api.list_sessions(c, u),
    ("StanzaUserMutation", "sendMessage"): lambda c, u, a: user_api.send_message(
        c, u, a.get("from"), a["to"], a["body"]
    ),
    ("StanzaUserMutation", "sendMessageHeadLine"): lambda c, u, a: user_api.send_message_headline(
        c, u, a.get("from"), a["to"], a.get("subject"), a.get("body")
    ),
    ("StanzaUserMutation", "sendStanza"): lambda c, u, a: user_api.send_stanza(
        c, u, _stanza_arg(a)
    ),
}


async def _each(outcomes: Awaitable[Sequence[Any]]) -> list[Any]:
    """A list result where some items failed: each `ApiError` becomes an error at its index
    (graphql-core reports an awaitable item that raises with the item's path)."""

    async def fail(error: ApiError) -> Any:
        raise error

    return [fail(o) if isinstance(o, ApiError) else o for o in await outcomes]


def _stanza_arg(args: dict[str, Any]) -> Any:
    if args.get("stanza") is None:
        raise ApiError("no_stanza", "Missing stanza")
    return args["stanza"]


async def _send_stanza(ctx: ApiContext, args: dict[str, Any]) -> Any:
    return await stanza.send_stanza(ctx, _stanza_arg(args))


def _admin_field(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def resolve(_root: Any, info: Info, **args: Any) -> Any:
        return await fn(info.context.api, args)

    return resolve


def _user_field(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def resolve(_root: Any, info: Info, **args: Any) -> Any:
        return await fn(info.context.api, info.context.user, args)

    return resolve


def _category(_root: Any, info: Info) -> dict[str, Any]:
    allowed = info.context.allowed_categories
    if allowed is not None and info.field_name not in allowed:
        raise ApiError("category_disabled", "Category disabled")
    return {}


def _admin_check_auth(_root: Any, info: Info) -> dict[str, Any]:
    if info.context.authorized:
        return {"domain": None, "authStatus": "AUTHORIZED", "authType": "ADMIN"}
    return {"domain": None, "authStatus": "UNAUTHORIZED", "authType": "UNAUTHORIZED"}


def _user_check_auth(_root: Any, info: Info) -> dict[str, Any]:
    user = info.context.user
    if info.context.authorized and user is not None:
        return {"username": str(user), "authStatus": "AUTHORIZED"}
    return {"username": None, "authStatus": "UNAUTHORIZED"}


def attach_resolvers(
    schema: GraphQLSchema,
    fields: Mapping[tuple[str, str], Callable[..., Awaitable[Any]]],
    endpoint: str = "admin",
) -> None:
    """Set the resolvers of the root and category fields (``endpoint``: "admin" or "user").

    ValueError for a field without resolver, and for a query and a mutation with the same name
    in one category (meerkatctl could not tell them apart).
    """
    wrap = _admin_field if endpoint == "admin" else _user_field
    check_auth = _admin_check_auth if endpoint == "admin" else _user_check_auth
    roots = [t for t in (schema.query_type, schema.mutation_type) if t is not None]
    commands: set[tuple[str, str]] = set()
    for root in roots:
        for name, field in root.fields.items():
            if name == "checkAuth":
                field.resolve = check_auth
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
                op_field.resolve = wrap(fn)
