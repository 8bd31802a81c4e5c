"""The admin schema: SDL files, resolver table and categories stay consistent."""

from __future__ import annotations

import pytest
from graphql import GraphQLObjectType, build_schema

from meerkat.graphql import admin_schema, admin_sdl, user_schema
from meerkat.graphql.resolvers import ADMIN_FIELDS, USER_FIELDS, attach_resolvers


def test_every_category_field_has_a_resolver_and_every_resolver_a_field() -> None:
    schema = admin_schema()
    fields = set()
    for root in (schema.query_type, schema.mutation_type):
        assert root is not None
        for name, field in root.fields.items():
            if name == "checkAuth":
                continue
            assert isinstance(field.type, GraphQLObjectType)
            fields |= {(field.type.name, op) for op in field.type.fields}
    assert fields == set(ADMIN_FIELDS)


def test_categories_are_mongooseim_names() -> None:
    schema = admin_schema()
    assert schema.query_type is not None and schema.mutation_type is not None
    assert set(schema.query_type.fields) == {
        "checkAuth",
        "account",
        "session",
        "stat",
        "server",
        "cets",
        "last",
        "private",
        "roster",
    }
    assert set(schema.mutation_type.fields) == {
        "account",
        "session",
        "stanza",
        "server",
        "last",
        "private",
        "offline",
        "roster",
    }


def test_a_field_without_resolver_is_a_startup_error() -> None:
    sdl = admin_sdl().replace("type StatsAdminQuery {", "type StatsAdminQuery {\n  brandNew: Int")
    with pytest.raises(ValueError, match=r"StatsAdminQuery\.brandNew: no resolver"):
        attach_resolvers(build_schema(sdl), ADMIN_FIELDS)


def test_a_query_and_mutation_with_one_name_in_a_category_is_a_startup_error() -> None:
    sdl = admin_sdl().replace(
        "type AccountAdminMutation {", "type AccountAdminMutation {\n  checkUser(user: JID!): Int"
    )
    fields = dict(ADMIN_FIELDS)
    fields[("AccountAdminMutation", "checkUser")] = ADMIN_FIELDS[("AccountAdminQuery", "checkUser")]
    with pytest.raises(ValueError, match=r"account\.checkUser: both a query and a mutation"):
        attach_resolvers(build_schema(sdl), fields)


def test_every_user_category_field_has_a_resolver() -> None:
    schema = user_schema()
    fields = set()
    for root in (schema.query_type, schema.mutation_type):
        assert root is not None
        for name, field in root.fields.items():
            if name != "checkAuth":
                assert isinstance(field.type, GraphQLObjectType)
                fields |= {(field.type.name, op) for op in field.type.fields}
    assert fields == set(USER_FIELDS)


def test_endpoints_not_implemented_or_misconfigured_are_refused() -> None:
    from test_api_support import Kernel

    from meerkat.graphql import make_graphql_app

    ctx = Kernel().ctx
    with pytest.raises(ValueError, match="domain_admin"):
        make_graphql_app(ctx, schema_endpoint="domain_admin")
    with pytest.raises(ValueError, match="only the admin endpoint"):
        make_graphql_app(ctx, schema_endpoint="user", username="a", password="b")
    with pytest.raises(ValueError, match="together"):
        make_graphql_app(ctx, username="a")
