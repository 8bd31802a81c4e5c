"""`meerkatctl`: the admin command line, derived from the node's GraphQL schema.

    meerkatctl [--url URL] [--user NAME --password PASSWORD] CATEGORY COMMAND [--ARG VALUE ...]
    meerkatctl graphql DOCUMENT [--variables JSON]
    meerkatctl status

As MongooseIM's `mongooseimctl` does, the commands are not written here: the tool asks the
node for its admin schema (introspection over HTTP), and every top-level field of the query
or mutation type is a category, every field of a category a command, every argument an
``--option``. The document it sends selects *all* fields of the result, recursively (a type
already on the path is cut to ``__typename``, unions become inline fragments). So a new
GraphQL field is a new command with no code here.

Argument values: Int-like scalars (Int, PosInt, NonNegInt) become integers, Float a number,
Boolean ``true``/``false``; list-typed and input-object arguments are parsed as JSON; anything
else (strings, JIDs, enums by name) is passed as a string.

Output: the GraphQL response as JSON indented by two spaces. Exit status: 0 success (also
help), 1 an error in the result or bad arguments, 2 usage (no arguments), 3 the node could not
be reached. The node URL and login come from the options or from ``MEERKATCTL_URL``,
``MEERKATCTL_USER`` and ``MEERKATCTL_PASSWORD``.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from graphql import get_introspection_query

DEFAULT_URL = "http://127.0.0.1:5551/api/graphql"
TIMEOUT = 30.0
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
INT_SCALARS = frozenset({"Int", "PosInt", "NonNegInt"})
NOT_CATEGORIES = frozenset({"checkAuth"})

USAGE = """\
Usage: meerkatctl [--url URL] [--user NAME --password PASSWORD] CATEGORY COMMAND [--ARG VALUE ...]
       meerkatctl CATEGORY                      list the commands of a category
       meerkatctl CATEGORY COMMAND --help       describe a command's arguments
       meerkatctl graphql DOCUMENT [--variables JSON]
       meerkatctl status                        the same as 'server status'

Options (or environment variables):
  --url URL            admin GraphQL endpoint (MEERKATCTL_URL; default {url})
  --user NAME          HTTP Basic login (MEERKATCTL_USER)
  --password PASSWORD  HTTP Basic password (MEERKATCTL_PASSWORD)
  --help               this text
"""


class UsageError(Exception):
    """Bad command line; the message is printed with the relevant usage."""


class Unreachable(Exception):
    """The node did not answer."""


# -- talking to the node --------------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    """An admin endpoint and its login."""

    url: str
    user: str | None = None
    password: str | None = None

    def request(self, query: str, variables: Mapping[str, Any] | None = None) -> Any:
        """POST a document; the decoded JSON answer (whatever the HTTP status)."""
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.user is not None:
            token = f"{self.user}:{self.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"cannot reach the node at {self.url}: {reason}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise Unreachable(f"unexpected HTTP {status} answer from {self.url}") from None


# -- commands from the schema ----------------------------------------------------------------
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


# -- the program -----------------------------------------------------------------------------
@dataclass
class Io:
    out: TextIO
    err: TextIO

    def json(self, value: Any) -> None:
        self.out.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _split_global(argv: list[str], env: Mapping[str, str]) -> tuple[Node, list[str], bool]:
    url = env.get("MEERKATCTL_URL", DEFAULT_URL)
    user, password = env.get("MEERKATCTL_USER"), env.get("MEERKATCTL_PASSWORD")
    wants_help = False
    while argv and argv[0].startswith("-"):
        option = argv.pop(0)
        if option in ("-h", "--help"):
            wants_help = True
            continue
        if option not in ("--url", "--user", "--password"):
            raise UsageError(f"Unknown option {option}")
        if not argv:
            raise UsageError(f"Missing value for {option}")
        value = argv.pop(0)
        if option == "--url":
            url = value
        elif option == "--user":
            user = value
        else:
            password = value
    return Node(url, user, password), argv, wants_help


def _categories(node: Node, io: Io) -> dict[str, Category] | int:
    """The node's categories, or an exit status after printing why there are none."""
    answer = node.request(get_introspection_query(descriptions=True))
    schema = answer.get("data", {}).get("__schema") if isinstance(answer, dict) else None
    if schema is None:
        io.json(answer)
        return EXIT_ERROR
    return build_categories(schema)


def _top_usage(node: Node, io: Io, stream: TextIO) -> None:
    stream.write(USAGE.format(url=DEFAULT_URL))
    try:
        categories = _categories(node, io)
    except Unreachable as exc:
        stream.write(f"\n(categories unavailable: {exc})\n")
        return
    if isinstance(categories, dict):
        stream.write("\nCategories:\n")
        width = max((len(n) for n in categories), default=0) + 2
        for name in sorted(categories):
            stream.write(f"  {name:<{width}} {categories[name].description or ''}".rstrip() + "\n")


def _result(io: Io, answer: Any) -> int:
    io.json(answer)
    if isinstance(answer, dict) and "errors" not in answer and "data" in answer:
        return EXIT_OK
    return EXIT_ERROR


def _run_graphql(node: Node, argv: list[str], io: Io) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        io.out.write("Usage: meerkatctl graphql DOCUMENT [--variables JSON]\n")
        return EXIT_OK if argv else EXIT_ERROR
    document, rest = argv[0], argv[1:]
    variables: Any = {}
    if rest[:1] == ["--variables"] and len(rest) == 2:
        try:
            variables = json.loads(rest[1])
        except ValueError:
            raise UsageError("--variables must be a JSON object") from None
    elif rest:
        raise UsageError("Usage: meerkatctl graphql DOCUMENT [--variables JSON]")
    if not isinstance(variables, dict):
        raise UsageError("--variables must be a JSON object")
    return _result(io, node.request(document, variables))


def run(argv: list[str], env: Mapping[str, str], io: Io) -> int:
    """The whole program; returns the exit status."""
    try:
        node, argv, wants_help = _split_global(argv, env)
    except UsageError as exc:
        io.err.write(f"{exc}\n\n" + USAGE.format(url=DEFAULT_URL))
        return EXIT_ERROR
    if not argv:
        _top_usage(node, io, io.out if wants_help else io.err)
        return EXIT_OK if wants_help else EXIT_USAGE
    try:
        if argv[0] == "graphql":
            return _run_graphql(node, argv[1:], io)
        if argv[0] == "status":
            argv = ["server", "status", *argv[1:]]
        categories = _categories(node, io)
        if isinstance(categories, int):
            return categories
        category = categories.get(argv[0])
        if category is None:
            io.err.write(f"Unknown category {argv[0]!r}\n\n")
            _top_usage(node, io, io.err)
            return EXIT_ERROR
        if len(argv) == 1 or argv[1] in ("-h", "--help"):
            io.out.write(category.usage())
            return EXIT_OK
        command = category.commands.get(argv[1])
        if command is None:
            io.err.write(f"Unknown command {argv[1]!r} in category {category.name!r}\n\n")
            io.err.write(category.usage())
            return EXIT_ERROR
        if any(a in ("-h", "--help") for a in argv[2:]):
            io.out.write(command.usage())
            return EXIT_OK
        try:
            variables = parse_args(command, argv[2:])
        except UsageError as exc:
            io.err.write(f"{exc}\n\n{command.usage()}")
            return EXIT_ERROR
        return _result(io, node.request(command.document(), variables))
    except Unreachable as exc:
        io.err.write(f"meerkatctl: {exc}\n")
        return EXIT_UNREACHABLE
    except UsageError as exc:
        io.err.write(f"{exc}\n")
        return EXIT_ERROR


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Entry point of the ``meerkatctl`` console script."""
    io = Io(stdout or sys.stdout, stderr or sys.stderr)
    return run(list(sys.argv[1:] if argv is None else argv), os.environ if env is None else env, io)


if __name__ == "__main__":
    sys.exit(main())
