"""The GraphQL API: SDL schema files, resolvers over `meerkat.api`, the HTTP endpoint."""

from .handler import GraphqlEndpoint, add_graphql_routes, make_graphql_app
from .schema import admin_schema, admin_sdl, user_schema, user_sdl

__all__ = [
    "GraphqlEndpoint",
    "add_graphql_routes",
    "admin_schema",
    "admin_sdl",
    "make_graphql_app",
    "user_schema",
    "user_sdl",
]
