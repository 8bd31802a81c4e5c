"""The GraphQL HTTP endpoint (aiohttp), with MongooseIM's envelope and error codes.

One request goes through MongooseIM's phases, each with its own failure:

- authorize: HTTP Basic. Admin endpoint: the configured admin login (none configured: every
  request is admin). User endpoint: a user's JID and password. Wrong login -> 401
  ``wrong_credentials``; an unparsable header -> 401 ``request_error``; no header -> only
  ``checkAuth`` may run, anything else is 401 ``no_permissions``.
- decode: POST body ``{"query", "variables", "operationName"}`` (variables may be a JSON
  string) or GET query parameters -> 400 ``invalid_json_body``, ``no_query_supplied``,
  ``variables_invalid_json``.
- parse -> 400 ``parser_error``; validate and variable coercion -> 400 ``validation_error`` /
  ``input_coercion``.
- execute -> 200 ``{"data": ...}``, plus ``errors`` (``message``, ``extensions.code`` and
  context such as ``jid``, ``path``) for resolvers that refused (`ApiError`) or crashed
  (``resolver_crash``). Anything unexpected in the handler -> 500.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Collection
from typing import Any

from aiohttp import web
from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    ValuesOfCorrectTypeRule,
    execute,
    parse,
    specified_rules,
    validate,
)
from graphql.language import DocumentNode, FieldNode

from ..api import ApiContext, ApiError
from ..xmpp.jid import Jid, JidError
from .resolvers import RequestContext
from .schema import admin_schema, user_schema

__all__ = ["add_graphql_routes", "make_graphql_app"]

log = logging.getLogger(__name__)

DEFAULT_PATH = "/api/graphql"
MALFORMED_AUTH = "Malformed authorization header. Please consult the relevant specification"
DECODE_MESSAGES = {
    "no_query_supplied": "The query was not supplied in the request body",
    "invalid_json_body": "The request JSON body is invalid",
    "variables_invalid_json": "The variables' JSON is invalid",
}
#: Validation rules whose failures are input coercion (bad argument literals); every other
#: rule's failure is a ``validation_error``.
COERCION_RULES = (ValuesOfCorrectTypeRule,)
OTHER_RULES = tuple(r for r in specified_rules if r not in COERCION_RULES)


class _RequestError(Exception):
    """A request-level failure: HTTP status and the ``errors`` list to send."""

    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        super().__init__(status)
        self.status = status
        self.errors = errors


def _request_error(status: int, code: str, message: str) -> _RequestError:
    return _RequestError(status, [{"extensions": {"code": code}, "message": message}])


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type="application/json",
    )


class GraphqlEndpoint:
    """The handler of one GraphQL endpoint (one schema, one login, some categories)."""

    def __init__(
        self,
        ctx: ApiContext,
        schema: GraphQLSchema,
        username: str | None,
        password: str | None,
        allowed_categories: Collection[str] | None,
        endpoint: str = "admin",
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("username and password must be set together")
        if endpoint not in ("admin", "user"):
            raise ValueError(f"schema_endpoint {endpoint!r} is not implemented yet")
        if endpoint == "user" and username is not None:
            raise ValueError("only the admin endpoint takes a username and password")
        self.endpoint = endpoint
        self.ctx = ctx
        self.schema = schema
        self.username = username
        self.password = password
        self.allowed_categories = (
            frozenset(allowed_categories) if allowed_categories is not None else None
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._handle(request)
        except _RequestError as exc:
            return _json(exc.status, {"errors": exc.errors})
        except Exception:
            log.exception("graphql_internal_crash path=%s", request.path)
            error = {
                "extensions": {"code": "internal_server_error"},
                "message": "GraphQL Internal Server Error",
            }
            return _json(500, {"errors": [error]})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        authorized, user = await self._authorize(request.headers.get("Authorization"))
        if request.method == "GET" and "query" not in request.query and _wants_html(request):
            return web.Response(text=GRAPHIQL_PAGE, content_type="text/html")
        query, variables, operation_name = await _decode(request)
        try:
            document = parse(query)
        except GraphQLSyntaxError as exc:
            line = exc.locations[0].line if exc.locations else 1
            message = f"Cannot parse line {line} because of {exc.message}"
            raise _request_error(400, "parser_error", message) from None
        errors = validate(self.schema, document, OTHER_RULES)
        if errors:
            raise _RequestError(400, [_request_level(e, "validation_error") for e in errors])
        errors = validate(self.schema, document, COERCION_RULES)
        if errors:
            raise _RequestError(400, [_request_level(e, "input_coercion") for e in errors])
        operation = _operation(document, operation_name)
        if not authorized and not _only_check_auth(operation):
            name = operation.name.value if operation.name else operation.operation.value
            message = f"Cannot execute query {name} without permissions"
            raise _request_error(401, "no_permissions", message)
        context = RequestContext(self.ctx, authorized, self.allowed_categories, user)
        result = execute(
            self.schema,
            document,
            context_value=context,
            variable_values=variables,
            operation_name=operation_name,
        )
        if not isinstance(result, ExecutionResult):
            result = await result
        if result.data is None and result.errors:
            # Execution that produced no data at all failed on the variables.
            raise _RequestError(400, [_request_level(e, "input_coercion") for e in result.errors])
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [_resolver_error(e) for e in result.errors]
        return _json(200, body)

    async def _authorize(self, header: str | None) -> tuple[bool, Jid | None]:
        """(authorized, user): no credentials give (False, None); wrong ones raise."""
        if self.endpoint == "admin" and (self.username is None or self.password is None):
            return True, None
        if header is None:
            return False, None
        user, password = _basic_credentials(header)
        if self.endpoint == "user":
            try:
                jid = Jid.parse(user).bare
            except JidError:
                raise _wrong_credentials() from None
            if not await self.ctx.accounts.check_password(jid, password):
                raise _wrong_credentials()
            return True, jid
        assert self.username is not None and self.password is not None
        good_user = hmac.compare_digest(user.encode(), self.username.encode())
        good_password = hmac.compare_digest(password.encode(), self.password.encode())
        if not (good_user and good_password):
            raise _wrong_credentials()
        return True, None


def _wrong_credentials() -> _RequestError:
    return _request_error(401, "wrong_credentials", "The provided credentials are wrong")


def _basic_credentials(header: str) -> tuple[str, str]:
    """(user, password) from a Basic Authorization header."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise _wrong_credentials()
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _request_error(401, "request_error", MALFORMED_AUTH) from None
    user, colon, password = decoded.partition(":")
    if not colon:
        raise _request_error(401, "request_error", MALFORMED_AUTH)
    return user, password


def _wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


async def _decode(request: web.Request) -> tuple[str, dict[str, Any] | None, str | None]:
    if request.method == "GET":
        params: dict[str, Any] = dict(request.query)
    else:
        raw = await request.text()
        try:
            params = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise _decode_error("invalid_json_body") from None
        if not isinstance(params, dict):
            raise _decode_error("invalid_json_body")
    query = params.get("query")
    if not isinstance(query, str) or not query.strip():
        raise _decode_error("no_query_supplied")
    variables = params.get("variables")
    if isinstance(variables, str):
        try:
            variables = json.loads(variables) if variables.strip() else None
        except ValueError:
            raise _decode_error("variables_invalid_json") from None
    if variables is not None and not isinstance(variables, dict):
        raise _decode_error("variables_invalid_json")
    operation_name = params.get("operationName")
    if not isinstance(operation_name, str) or not operation_name:
        operation_name = None
    return query, variables, operation_name


def _decode_error(code: str) -> _RequestError:
    return _request_error(400, code, DECODE_MESSAGES[code])


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == name]
        if not operations:
            raise _request_error(400, "validation_error", f'Unknown operation named "{name}".')
    elif len(operations) != 1:
        message = "Must provide operation name if query contains multiple operations."
        raise _request_error(400, "validation_error", message)
    return operations[0]


def _only_check_auth(operation: OperationDefinitionNode) -> bool:
    if operation.operation.value != "query":
        return False
    return all(
        isinstance(s, FieldNode) and s.name.value in ("checkAuth", "__typename")
        for s in operation.selection_set.selections
    )


def _request_level(error: GraphQLError, code: str) -> dict[str, Any]:
    out: dict[str, Any] = {"extensions": {"code": code}, "message": error.message}
    if error.path:
        out["path"] = list(error.path)
    return out


def _resolver_error(error: GraphQLError) -> dict[str, Any]:
    original = error.original_error
    if isinstance(original, ApiError):
        message = original.message
        extensions: dict[str, Any] = {"code": original.code, **original.extra}
    elif original is not None:
        log.error(
            "graphql_resolver_crash path=%s",
            error.path,
            exc_info=(type(original), original, original.__traceback__),
        )
        message = "Unexpected error resolver crash"
        extensions = {"code": "resolver_crash"}
    else:
        message = error.message
        extensions = {"code": "uncategorized"}
    return {"message": message, "extensions": extensions, "path": list(error.path or [])}


def add_graphql_routes(
    app: web.Application,
    ctx: ApiContext,
    *,
    path: str = DEFAULT_PATH,
    schema_endpoint: str = "admin",
    username: str | None = None,
    password: str | None = None,
    allowed_categories: Collection[str] | None = None,
) -> GraphqlEndpoint:
    """Serve a GraphQL endpoint at ``path`` (GET and POST) on an existing aiohttp app.

    ``schema_endpoint`` is "admin" (``username``/``password``: the admin login, or None for
    no authentication) or "user" (Basic with a user's JID and password).
    ``allowed_categories`` None means all.
    """
    schema = user_schema() if schema_endpoint == "user" else admin_schema()
    endpoint = GraphqlEndpoint(ctx, schema, username, password, allowed_categories, schema_endpoint)
    app.router.add_route("GET", path, endpoint.handle)
    app.router.add_route("POST", path, endpoint.handle)
    return endpoint


def make_graphql_app(
    ctx: ApiContext,
    schema_endpoint: str = "admin",
    username: str | None = None,
    password: str | None = None,
    allowed_categories: Collection[str] | None = None,
    *,
    path: str = DEFAULT_PATH,
) -> web.Application:
    """An aiohttp application serving only one GraphQL endpoint (at ``/api/graphql``)."""
    app = web.Application()
    add_graphql_routes(
        app,
        ctx,
        path=path,
        schema_endpoint=schema_endpoint,
        username=username,
        password=password,
        allowed_categories=allowed_categories,
    )
    return app


GRAPHIQL_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Meerkat GraphQL</title></head>
<body>
<h1>Meerkat admin GraphQL</h1>
<p>POST <code>{"query": ..., "variables": ...}</code> to this URL, or try a query here.</p>
<textarea id="q" rows="12" cols="80">{ server { status { statusCode message version } } }</textarea>
<br><button id="run">Run</button>
<pre id="out"></pre>
<script>
document.getElementById("run").onclick = async () => {
  const response = await fetch(location.pathname, {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({query: document.getElementById("q").value})});
  document.getElementById("out").textContent =
    JSON.stringify(await response.json(), null, 2);
};
</script>
</body></html>
"""
