"""Loading the SDL schema files (``schema/*.graphql``) into executable schemas.

``global.graphql`` holds the scalars and types both APIs share; ``admin*.graphql`` make the
admin schema, ``user*.graphql`` the user schema.
"""

from __future__ import annotations

from importlib import resources

from graphql import GraphQLSchema, build_schema

from .resolvers import ADMIN_FIELDS, USER_FIELDS, attach_resolvers
from .scalars import install_scalars

__all__ = ["admin_schema", "admin_sdl", "user_schema", "user_sdl"]


def _sdl(prefix: str) -> str:
    folder = resources.files(__package__).joinpath("schema")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".graphql"))
    parts = [folder.joinpath("global.graphql").read_text(encoding="utf-8")]
    parts += [folder.joinpath(n).read_text(encoding="utf-8") for n in names if n.startswith(prefix)]
    return "\n".join(parts)


def admin_sdl() -> str:
    """The admin schema's SDL: the shared definitions and every ``admin*.graphql`` file."""
    return _sdl("admin")


def user_sdl() -> str:
    """The user schema's SDL: the shared definitions and every ``user*.graphql`` file."""
    return _sdl("user")


def admin_schema() -> GraphQLSchema:
    """A fresh executable admin schema (scalars validated, every field resolved)."""
    schema = build_schema(admin_sdl())
    install_scalars(schema)
    attach_resolvers(schema, ADMIN_FIELDS, "admin")
    return schema


def user_schema() -> GraphQLSchema:
    """A fresh executable user schema."""
    schema = build_schema(user_sdl())
    install_scalars(schema)
    attach_resolvers(schema, USER_FIELDS, "user")
    return schema
