"""Commands from the admin schema, for `meerkatctl` (MongooseIM's mongoose_graphql_commands).

Pure functions over an introspection result (``data.__schema``): every top-level field of the
query or mutation type except ``checkAuth`` is a category, every field of a category type a
command, every argument an ``--option``. A command's document selects *all* fields of its
result, recursively: a type already on the path is cut to ``__typename``, a union becomes one
inline fragment per member, and fields that need arguments are left out.

Argument values: Int-like scalars (Int, PosInt, NonNegInt) become integers, Float a number,
Boolean ``true``/``false``; list-typed and input-object arguments are parsed as JSON; anything
else (strings, JIDs, enums by name) is passed as a string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Arg",
    "Category",
    "Command",
    "UsageError",
    "build_categories",
    "convert",
    "parse_args",
    "render_type",
    "selection_set",
]

INT_SCALARS = frozenset({"Int", "PosInt", "NonNegInt"})
NOT_CATEGORIES = frozenset({"checkAuth"})


class UsageError(Exception):
    """Bad command line; the message is printed with the relevant usage."""


@dataclass(frozen=True)
class Arg:
    """One ``--name value`` option: a GraphQL argument."""

    name: str
    type_ref: dict[str, Any]
    description: str | None
    has_default: bool

    @property
    def type_name(self) -> str:
        return render_type(self.type_ref)

    @property
    def required(self) -> bool:
        return self.type_ref["kind"] == "NON_NULL" and not self.has_default


@dataclass(frozen=True)
class Command:
    """One GraphQL operation: ``op_type { category { name(args) { selection } } }``."""

    category: str
    name: str
    op_type: str
    args: tuple[Arg, ...]
    selection: str
    description: str | None

    def document(self) -> str:
        declared = ", ".join(f"${a.name}: {a.type_name}" for a in self.args)
        passed = ", ".join(f"{a.name}: ${a.name}" for a in self.args)
        head = f"{self.op_type} ({declared})" if declared else self.op_type
        call = f"{self.name}({passed})" if passed else self.name
        selection = f" {self.selection}" if self.selection else ""
        return f"{head} {{ {self.category} {{ {call}{selection} }} }}"

    def usage(self) -> str:
        options = [f"--{a.name} {_meta(a)}" for a in self.args if a.required]
        options += [f"[--{a.name} {_meta(a)}]" for a in self.args if not a.required]
        lines = [f"Usage: meerkatctl {self.category} {self.name} {' '.join(options)}".rstrip()]
        if self.description:
            lines += ["", self.description]
        if self.args:
            lines += ["", "Arguments:"]
            width = max(len(a.name) for a in self.args) + 2
            for a in self.args:
                text = f"  --{a.name:<{width}} {a.type_name}"
                if a.description:
                    text += f"  {a.description}"
                lines.append(text)
        return "\n".join(lines) + "\n"


@dataclass
class Category:
    name: str
    description: str | None
    commands: dict[str, Command] = field(default_factory=dict)

    def usage(self) -> str:
        lines = [f"Usage: meerkatctl {self.name} COMMAND [--ARG VALUE ...]", "", "Commands:"]
        width = max((len(n) for n in self.commands), default=0) + 2
        for name in sorted(self.commands):
            description = self.commands[name].description or ""
            lines.append(f"  {name:<{width}} {description.splitlines()[0] if description else ''}")
        return "\n".join(line.rstrip() for line in lines) + "\n"


def _meta(arg: Arg) -> str:
    return str(_named(arg.type_ref)["name"]).upper()


def _named(type_ref: dict[str, Any]) -> dict[str, Any]:
    while type_ref.get("ofType") is not None:
        type_ref = type_ref["ofType"]
    return type_ref


def render_type(type_ref: dict[str, Any]) -> str:
    """An introspected type reference as GraphQL syntax: ``JID!``, ``[String!]``."""
    kind = type_ref["kind"]
    if kind == "NON_NULL":
        return render_type(type_ref["ofType"]) + "!"
    if kind == "LIST":
        return f"[{render_type(type_ref['ofType'])}]"
    return str(type_ref["name"])


def _is_list(type_ref: dict[str, Any] | None) -> bool:
    while type_ref is not None:
        if type_ref["kind"] == "LIST":
            return True
        type_ref = type_ref.get("ofType")
    return False


def selection_set(types: Mapping[str, Any], type_ref: dict[str, Any], path: tuple[str, ...]) -> str:
    """Every field of the result type, recursively ("" for scalars and enums)."""
    name = _named(type_ref)["name"]
    t = types[name]
    if t["kind"] in ("SCALAR", "ENUM"):
        return ""
    if name in path:
        return "{ __typename }"
    if t["kind"] == "UNION":
        parts = []
        for member in t["possibleTypes"]:
            inner = selection_set(types, member, (*path, name))
            parts.append(f"... on {member['name']} {inner}")
        return "{ " + " ".join(parts) + " }"
    parts = []
    for f in t["fields"] or ():
        if any(a["type"]["kind"] == "NON_NULL" and a["defaultValue"] is None for a in f["args"]):
            continue  # a field needing arguments cannot be selected blindly
        inner = selection_set(types, f["type"], (*path, name))
        parts.append(f"{f['name']} {inner}".rstrip())
    return "{ " + " ".join(parts) + " }"


def build_categories(schema: Mapping[str, Any]) -> dict[str, Category]:
    """Categories and commands from an introspection result's ``__schema``."""
    types = {t["name"]: t for t in schema["types"]}
    categories: dict[str, Category] = {}
    roots = [("query", schema.get("queryType")), ("mutation", schema.get("mutationType"))]
    for op_type, root_ref in roots:
        if root_ref is None:
            continue
        for cat_field in types[root_ref["name"]]["fields"]:
            if cat_field["name"] in NOT_CATEGORIES:
                continue
            cat_type = types[_named(cat_field["type"])["name"]]
            if cat_type["kind"] != "OBJECT":
                continue
            category = categories.setdefault(
                cat_field["name"], Category(cat_field["name"], cat_field["description"])
            )
            for op in cat_type["fields"]:
                if op["name"] in category.commands:
                    raise ValueError(f"{category.name}.{op['name']}: query and mutation collide")
                args = tuple(
                    Arg(a["name"], a["type"], a["description"], a["defaultValue"] is not None)
                    for a in op["args"]
                )
                category.commands[op["name"]] = Command(
                    category.name,
                    op["name"],
                    op_type,
                    args,
                    selection_set(types, op["type"], ()),
                    op["description"],
                )
    return categories


def parse_args(command: Command, argv: Sequence[str]) -> dict[str, Any]:
    """``--name value`` pairs to GraphQL variables; UsageError for anything wrong."""
    by_name = {a.name: a for a in command.args}
    variables: dict[str, Any] = {}
    items = list(argv)
    while items:
        option = items.pop(0)
        if not option.startswith("--") or len(option) < 3:
            raise UsageError(f"Unexpected argument {option!r}: expected --NAME VALUE")
        name = option[2:]
        arg = by_name.get(name)
        if arg is None:
            raise UsageError(f"Unknown argument --{name}")
        if not items:
            raise UsageError(f"Missing value for --{name}")
        if name in variables:
            raise UsageError(f"Argument --{name} given twice")
        variables[name] = convert(arg, items.pop(0))
    missing = [a.name for a in command.args if a.required and a.name not in variables]
    if missing:
        raise UsageError("Missing required arguments: " + ", ".join(f"--{m}" for m in missing))
    return variables


def convert(arg: Arg, value: str) -> Any:
    """A command-line string to the JSON value GraphQL expects for this argument."""
    named = _named(arg.type_ref)
    try:
        if _is_list(arg.type_ref) or named["kind"] == "INPUT_OBJECT":
            return json.loads(value)
        if named["name"] in INT_SCALARS:
            return int(value)
        if named["name"] == "Float":
            return float(value)
        if named["name"] == "Boolean":
            if value not in ("true", "false"):
                raise ValueError(value)
            return value == "true"
    except ValueError:
        raise UsageError(f"Invalid value for --{arg.name} ({arg.type_name}): {value!r}") from None
    return value
