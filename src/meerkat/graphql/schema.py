"""Loading the SDL schema files (``schema/*.graphql``) into an executable schema."""

from __future__ import annotations

from importlib import resources

from graphql import GraphQLSchema, build_schema

from .resolvers import ADMIN_FIELDS, attach_resolvers
from .scalars import install_scalars

__all__ = ["admin_schema", "admin_sdl"]


def admin_sdl() -> str:
    """The admin schema's SDL: the shared scalars and every ``admin*.graphql`` file."""
    folder = resources.files(__package__).joinpath("schema")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".graphql"))
    parts = [folder.joinpath("scalars.graphql").read_text(encoding="utf-8")]
    parts += [
        folder.joinpath(n).read_text(encoding="utf-8") for n in names if n.startswith("admin")
    ]
    return "\n".join(parts)


def admin_schema() -> GraphQLSchema:
    """A fresh executable admin schema (scalars validated, every field resolved)."""
    schema = build_schema(admin_sdl())
    install_scalars(schema)
    attach_resolvers(schema, ADMIN_FIELDS)
    return schema
