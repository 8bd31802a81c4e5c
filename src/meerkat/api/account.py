"""Admin category `account`: register, remove, list, count and check users; passwords.

Results and messages are MongooseIM 6.2's (`mongoose_account_api`): for example registering
gives ``{"message": "User alice@localhost successfully registered", "jid": "alice@localhost"}``
and an existing user the error ``exists``, "User alice@localhost already registered at node
meerkat@host".
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import secrets
from pathlib import Path
from typing import Any

from ..auth.accounts import AccountError, AccountExists
from ..xmpp.jid import Jid, JidError, prep_domain
from .context import ApiContext
from .errors import ApiError

__all__ = [
    "ban_user",
    "change_user_password",
    "check_password",
    "check_password_hash",
    "check_user",
    "count_users",
    "import_users",
    "list_users",
    "register_user",
    "remove_user",
]

NOT_ALLOWED = "User does not exist or you are not authorized properly"


def _served_domain(ctx: ApiContext, domain: str) -> str:
    try:
        prepped = prep_domain(domain)
    except JidError:
        prepped = None
    if prepped is None or prepped not in ctx.hosts:
        raise ApiError("domain_not_found", "Domain does not exist", {"domain": domain})
    return prepped


def generate_username(ctx: ApiContext) -> str:
    """A fresh username: a timestamp and random hex, as MongooseIM generates them."""
    return f"{int(ctx.clock.now() * 1_000_000)}-{secrets.token_hex(8)}"


async def register_user(
    ctx: ApiContext, domain: str, username: str | None, password: str
) -> dict[str, Any]:
    """Create an account; a missing ``username`` is generated."""
    if username is None:
        username = generate_username(ctx)
    literal = f"{username}@{domain}"
    try:
        jid = ctx.accounts.user_jid(username, domain)
    except AccountError:
        raise ApiError("invalid_jid", f"Invalid JID {literal}", {"jid": literal}) from None
    try:
        await ctx.accounts.register(jid, password)
    except AccountExists:
        message = f"User {jid} already registered at node {ctx.node}"
        raise ApiError("exists", message, {"jid": str(jid)}) from None
    except AccountError as exc:
        if exc.reason == "invalid_jid":
            raise ApiError("invalid_jid", f"Invalid JID {literal}", {"jid": literal}) from None
        if exc.reason == "limit_per_domain_exceeded":
            message = f"User limit has been exceeded for domain {domain}"
            raise ApiError(exc.reason, message, {"jid": str(jid)}) from None
        message = f"Can't register user {jid} at node {ctx.node}: {exc.reason}"
        raise ApiError("cannot_register", message, {"jid": str(jid)}) from None
    return {"message": f"User {jid} successfully registered", "jid": str(jid)}


async def remove_user(ctx: ApiContext, user: Jid) -> dict[str, Any]:
    """Remove an account with all its data, closing its sessions."""
    bare = user.bare
    if not await ctx.accounts.remove(bare):
        raise ApiError("not_allowed", NOT_ALLOWED, {"jid": str(bare)})
    return {"message": f"User {bare} successfully unregistered", "jid": str(bare)}


async def list_users(ctx: ApiContext, domain: str) -> list[str]:
    """Bare JIDs of a domain's accounts, sorted."""
    served = _served_domain(ctx, domain)
    return sorted(str(j) for j in await ctx.accounts.list_users(served))


async def count_users(ctx: ApiContext, domain: str) -> int:
    return await ctx.accounts.count_users(_served_domain(ctx, domain))


async def check_user(ctx: ApiContext, user: Jid) -> dict[str, Any]:
    """``{"exist": bool, "message": ...}`` (a missing user is not an error)."""
    bare = user.bare
    if await ctx.accounts.exists(bare):
        return {"exist": True, "message": f"User {bare} exists"}
    return {"exist": False, "message": f"User {bare} does not exist"}


async def check_password(ctx: ApiContext, user: Jid, password: str) -> dict[str, Any]:
    """``{"correct": bool, "message": ...}``; error ``user_does_not_exist`` for no account."""
    bare = user.bare
    if not await ctx.accounts.exists(bare):
        message = (
            f"Password {password} for user {bare} is incorrect because this user does not exist"
        )
        raise ApiError("user_does_not_exist", message, {"jid": str(bare)})
    if await ctx.accounts.check_password(bare, password):
        return {"correct": True, "message": f"Password '{password}' for user {bare} is correct"}
    return {"correct": False, "message": f"Password '{password}' for user {bare} is incorrect"}


async def change_user_password(ctx: ApiContext, user: Jid, new_password: str) -> dict[str, Any]:
    bare = user.bare
    try:
        changed = await ctx.accounts.set_password(bare, new_password)
    except AccountError as exc:
        if exc.reason == "null_password":
            raise ApiError("empty_password", "Empty password", {"jid": str(bare)}) from None
        raise ApiError("not_allowed", NOT_ALLOWED, {"jid": str(bare)}) from None
    if not changed:
        raise ApiError("not_allowed", NOT_ALLOWED, {"jid": str(bare)})
    return {"message": "Password changed", "jid": str(bare)}


async def ban_user(ctx: ApiContext, user: Jid, reason: str) -> dict[str, Any]:
    """Close the user's sessions and set a random password nobody knows."""
    bare = user.bare
    if not await ctx.accounts.exists(bare):
        raise ApiError("user_does_not_exist", f"User {bare} does not exist", {"jid": str(bare)})
    for record in ctx.sessions.user_sessions(bare):
        await ctx.sessions.kick(record, "policy-violation")
    await ctx.accounts.set_password(bare, f"BANNED_ACCOUNT--{secrets.token_hex(16)}--{reason}")
    message = f"User {bare} successfully banned with reason: {reason}"
    return {"message": message, "jid": str(bare)}


def _mongoose_hex(digest: bytes) -> str:
    # COMPAT: MongooseIM formats each byte with "~.16B": upper case and *not* zero-padded, so
    # the md5 of "" is D41D8CD98F0B24E980998ECF8427E. Clients compare against that form.
    return "".join(f"{byte:X}" for byte in digest)


async def check_password_hash(
    ctx: ApiContext, user: Jid, password_hash: str, hash_method: str
) -> dict[str, Any]:
    """Compare an md5/sha hash with a *plain-text* stored password (MongooseIM's rules)."""
    bare = user.bare
    stored = await ctx.accounts.plain_password(bare)
    if not stored:
        message = "User does not exist or using SCRAM password"
        raise ApiError("wrong_user", message, {"jid": str(bare)})
    if hash_method not in ("md5", "sha"):
        message = f"Given hash method `{hash_method}` is not supported. Try `md5` or `sha`"
        raise ApiError("wrong_method", message, {"jid": str(bare)})
    digest = hashlib.new("sha1" if hash_method == "sha" else "md5", stored.encode()).digest()
    if _mongoose_hex(digest) == password_hash:
        return {"correct": True, "message": "Password hash is correct"}
    return {"correct": False, "message": "Password hash is incorrect"}


IMPORT_KEYS = (
    "created",
    "existing",
    "notAllowed",
    "invalidJID",
    "emptyPassword",
    "invalidRecord",
)


async def import_users(ctx: ApiContext, filename: str) -> dict[str, Any]:
    """Register the users of a CSV file of ``username,domain,password`` rows.

    Every row lands in one list: ``created``, ``existing``, ``notAllowed`` (unknown domain,
    domain full), ``invalidJID``, ``emptyPassword`` or ``invalidRecord`` (not three fields).
    Error ``file_not_found`` when the file cannot be read.
    """
    try:
        text = await asyncio.to_thread(Path(filename).read_text, encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise ApiError("file_not_found", "File not found") from None
    result: dict[str, Any] = {"status": "Completed", **{key: [] for key in IMPORT_KEYS}}
    for row in csv.reader(io.StringIO(text)):
        if not row:
            continue
        if len(row) != 3:
            result["invalidRecord"].append(",".join(row))
            continue
        username, domain, password = row
        try:
            jid = ctx.accounts.user_jid(username, domain)
        except AccountError:
            result["invalidJID"].append(f"{username}@{domain}")
            continue
        try:
            await ctx.accounts.register(jid, password)
        except AccountExists:
            result["existing"].append(str(jid))
        except AccountError as exc:
            key = "emptyPassword" if exc.reason == "null_password" else "notAllowed"
            result[key].append(str(jid))
        else:
            result["created"].append(str(jid))
    return result
