"""Custom scalars of the admin schema, with MongooseIM's validation.

Each scalar coerces input (variables and literals) to a Python value resolvers can use:
JIDs to `Jid` (normalised, RFC 7622), XML to `Element`, DateTime to an aware `datetime`;
and output back to JSON strings. Invalid input raises `GraphQLError`, which the HTTP layer
reports as ``input_coercion``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from graphql import GraphQLError, GraphQLScalarType, GraphQLSchema
from graphql.language import IntValueNode, StringValueNode, ValueNode

from ..xmpp.element import Element
from ..xmpp.errors import StreamError
from ..xmpp.jid import Jid, JidError, prep_domain, prep_local, prep_resource
from ..xmpp.stream import parse_element

__all__ = ["install_scalars"]


def _fail(type_name: str, value: object, reason: str) -> GraphQLError:
    return GraphQLError(
        f"Input coercion failed for type {type_name} with value {value!r}. "
        f"The reason it failed is: {reason}"
    )


def _string(type_name: str, value: object) -> str:
    if not isinstance(value, str):
        raise _fail(type_name, value, "not a string")
    return value


def _jid(type_name: str, kind: str) -> Callable[[object], Jid]:
    def coerce(value: object) -> Jid:
        text = _string(type_name, value)
        try:
            jid = Jid.parse(text)
        except JidError:
            raise _fail(type_name, value, "failed_to_parse_jid") from None
        if kind == "bare" and jid.resource:
            raise _fail(type_name, value, "jid_with_resource")
        if kind == "full" and not jid.resource:
            raise _fail(type_name, value, "jid_without_resource")
        return jid

    return coerce


def _prepped(type_name: str, prep: Callable[[str], str], reason: str) -> Callable[[object], str]:
    def coerce(value: object) -> str:
        text = _string(type_name, value)
        try:
            result = prep(text) if text else ""
        except JidError:
            result = ""
        if not result:
            raise _fail(type_name, value, reason)
        return result

    return coerce


def _non_empty(value: object) -> str:
    text = _string("NonEmptyString", value)
    if not text:
        raise _fail("NonEmptyString", value, "Given string is empty")
    return text


def _int(type_name: str, minimum: int, reason: str) -> Callable[[object], int]:
    def coerce(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(type_name, value, "not an integer")
        if value < minimum:
            raise _fail(type_name, value, reason)
        return value

    return coerce


def _datetime(value: object) -> datetime:
    text = _string("DateTime", value)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _fail("DateTime", value, "failed_to_parse_datetime") from None
    if parsed.tzinfo is None:
        raise _fail("DateTime", value, "missing_timezone")
    return parsed


def _xml(value: object) -> Element:
    text = _string("XmlElement", value)
    try:
        return parse_element(text)
    except StreamError:
        raise _fail("XmlElement", value, "failed_to_parse_xml") from None


def _out_datetime(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _out_int(value: Any) -> int:
    return int(value)


INPUT: dict[str, Callable[[object], Any]] = {
    "JID": _jid("JID", "any"),
    "BareJID": _jid("BareJID", "bare"),
    "FullJID": _jid("FullJID", "full"),
    "DomainName": _prepped("DomainName", prep_domain, "failed_to_parse_domain"),
    "UserName": _prepped("UserName", prep_local, "failed_to_parse_username"),
    "ResourceName": _prepped("ResourceName", prep_resource, "failed_to_parse_resource"),
    "NonEmptyString": _non_empty,
    "PosInt": _int("PosInt", 1, "Value is not a positive integer"),
    "NonNegInt": _int("NonNegInt", 0, "Value is not a non-negative integer"),
    "DateTime": _datetime,
    "XmlElement": _xml,
}
OUTPUT: dict[str, Callable[[Any], Any]] = {
    "PosInt": _out_int,
    "NonNegInt": _out_int,
    "DateTime": _out_datetime,
}


def _literal(coerce: Callable[[object], Any]) -> Callable[..., Any]:
    def from_ast(node: ValueNode, _variables: Any = None) -> Any:
        if isinstance(node, StringValueNode):
            return coerce(node.value)
        if isinstance(node, IntValueNode):
            return coerce(int(node.value))
        raise GraphQLError(f"Unexpected literal {type(node).__name__}")

    return from_ast


def install_scalars(schema: GraphQLSchema) -> None:
    """Give the SDL-declared scalars of ``schema`` their coercion functions."""
    for name, coerce in INPUT.items():
        scalar = schema.type_map.get(name)
        if not isinstance(scalar, GraphQLScalarType):
            continue
        output = OUTPUT.get(name, str)
        literal = _literal(coerce)
        scalar.coerce_input_value = coerce
        scalar.parse_value = coerce  # type: ignore[method-assign, assignment]
        scalar.coerce_input_literal = literal
        scalar.parse_literal = literal  # type: ignore[method-assign]
        scalar.coerce_output_value = output
        scalar.serialize = output  # type: ignore[method-assign, assignment]
