"""`meerkatctl`: the admin command line, derived from the node's GraphQL schema.

    meerkatctl [--url URL] [--user NAME --password PASSWORD] CATEGORY COMMAND [--ARG VALUE ...]
    meerkatctl graphql DOCUMENT [--variables JSON]
    meerkatctl status

As MongooseIM's `mongooseimctl` does, the commands are not written here: the tool asks the
node for its admin schema (introspection over HTTP) and derives categories, commands and
``--options`` from it (`meerkat.graphql.commands`). So a new GraphQL field is a new command
with no code here.

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
from dataclasses import dataclass
from typing import Any, TextIO

from graphql import get_introspection_query

from .graphql.commands import Category, UsageError, build_categories, parse_args

DEFAULT_URL = "http://127.0.0.1:5551/api/graphql"
TIMEOUT = 30.0
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

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
            with exc:  # an error answer (400, 401, 500) still carries the JSON body
                status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"cannot reach the node at {self.url}: {reason}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise Unreachable(f"unexpected HTTP {status} answer from {self.url}") from None


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
    data = answer.get("data") if isinstance(answer, dict) else None
    schema = data.get("__schema") if isinstance(data, dict) else None
    if schema is None:
        io.json(answer)
        return EXIT_ERROR
    try:
        return build_categories(schema)
    except (KeyError, TypeError, ValueError) as exc:
        io.err.write(f"meerkatctl: the node's schema cannot be used: {exc!r}\n")
        return EXIT_ERROR


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
