"""Hooks: named extension points with MongooseIM's names, run in priority order.

A handler is ``async def handler(acc, params) -> object``; returning `STOP` ends the chain
(the meaning of STOP is given per hook below). ``acc`` is the value being folded: an `Acc` for
stanza hooks, a list for hooks that collect (disco features, stream features), or None.
``params`` is a small dict of hook-specific values. Handlers are registered per host type (or
for all host types with ``None``) by the module loader, which also removes them on stop.

A crashing handler is logged and skipped in production and re-raised in tests
(`HookRegistry(reraise=True)`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

log = logging.getLogger(__name__)

STOP: Final = object()
"""Returned by a handler to stop the chain."""

Handler = Callable[[Any, dict[str, Any]], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Hook:
    """A declared hook: its MongooseIM name and what running it means."""

    name: str
    doc: str


# -- c2s: stanzas sent by and to a client --------------------------------------------------
USER_SEND_PACKET = Hook(
    "user_send_packet",
    "Run by the c2s session for every stanza its client sends, after `from` is stamped. "
    "STOP: the stanza is consumed (not routed). params: session (SessionInfo).",
)
USER_SEND_MESSAGE = Hook("user_send_message", "As user_send_packet, for messages only.")
USER_SEND_PRESENCE = Hook("user_send_presence", "As user_send_packet, for presences only.")
USER_SEND_IQ = Hook("user_send_iq", "As user_send_packet, for IQs only.")
USER_RECEIVE_PACKET = Hook(
    "user_receive_packet",
    "Run by the c2s session for each stanza about to be delivered to its client. "
    "STOP: the stanza is not delivered. params: session.",
)
XMPP_PRESEND_ELEMENT = Hook(
    "xmpp_presend_element",
    "Run by the c2s session just before any element is written to the client (SM, CSI). "
    "STOP: not written now (the handler took it). params: session.",
)
C2S_STREAM_FEATURES = Hook(
    "c2s_stream_features",
    "Collects extra stream features (acc: list[Element]) after authentication. params: session. "
    "At the stream restart after SASL, while no module holds state for the session "
    "(`session.state(...)` all empty), the result may depend on the host only: the c2s caches "
    "it per host and listener then.",
)
USER_SEND_XMLEL = Hook(
    "user_send_xmlel",
    "A top-level element from an authenticated client that is not a stanza (stream management "
    "<r/> <a/> <enable/>, and <resume/> before binding; CSI <active/> <inactive/>). acc: the "
    "Element. STOP: handled; when no handler stops, the session closes with "
    "unsupported-stanza-type. params: session.",
)
SASL2_STREAM_FEATURES = Hook(
    "sasl2_stream_features",
    "Collects the children of SASL2's <inline/> in the pre-auth features (XEP-0388): "
    "acc: list[Element] (<sm/>, <bind/>, <fast/> ...). params: session, secure, "
    "channel_bindings. The result may depend on the host and on these two only: the c2s "
    "caches the serialized features per kind of connection.",
)
BIND2_STREAM_FEATURES = Hook(
    "bind2_stream_features",
    "Collects the <feature var=.../> elements Bind 2 (XEP-0386) advertises inside its "
    "<inline/>: acc: list[Element]. params: session. The result may depend on the host only "
    "(the c2s caches the pre-auth features, see sasl2_stream_features).",
)
BIND2_ENABLE_FEATURES = Hook(
    "bind2_enable_features",
    "A Bind 2 request bound a resource: acc is the <bind/> request; each module enables what "
    "the client asked for inline (carbons, CSI, SM) and appends the element to report to "
    "params['results'] (list[Element], put inside <bound/>). params: session, results.",
)
C2S_PREPROCESSING_HOOK = Hook(
    "c2s_preprocessing_hook",
    "Run by the c2s session for every stanza (message, presence, iq) its bound client sends, "
    "before anything else looks at it, even when it is then refused (stream management counts "
    "the client's stanzas here). acc: the Element. STOP: the stanza is dropped. "
    "params: session.",
)
USER_SOCKET_CLOSED = Hook(
    "user_socket_closed",
    "The transport of a bound session closed or failed without a closing stream tag. A "
    "handler that can keep the session for a later resumption (XEP-0198) calls "
    "session.detach(seconds): the session then stays registered, without a transport, until "
    "it is resumed, kicked or the time is up. acc: None. params: session, reason.",
)
USER_TERMINATE = Hook(
    "user_terminate",
    "A bound session is about to end without being resumed (timeout, kick, close, error), "
    "while it still counts as resumable: a XEP-0198 <resume/> arriving meanwhile waits for "
    "its refusal until the session has ended. Stream management retires the session's id "
    "here (stale h first). acc: None. params: session, jid, sid, reason.",
)
REROUTE_UNACKED_MESSAGES = Hook(
    "reroute_unacked_messages",
    "A bound session is terminating (not resumed), after it left the session table and "
    "SM_REMOVE_CONNECTION ran: a module holding stanzas written to the client but not "
    "acknowledged routes them again (offline storage or another resource). acc: None. "
    "params: session, jid, sid, reason.",
)
SASL2_SUCCESS = Hook(
    "sasl2_success",
    "A SASL2 (XEP-0388) authentication succeeded; the c2s is building <success/>. acc: the "
    "client's <authenticate/> element. Handlers act on their inline requests (SM <resume/>, "
    "FAST <request-token/>) and append what <success/> must carry to params['results']; a "
    "handler that resumed a session leaves it bound (the c2s then skips Bind 2). "
    "params: session, jid (authenticated bare JID), mechanism, results (list[Element]), "
    "user_agent_id (str or None), token_used (the FAST token's mechanism or None).",
)
FAST_AUTHENTICATE = Hook(
    "fast_authenticate",
    "A SASL2 authentication uses a FAST token mechanism (XEP-0484, HT-*). acc: a "
    "`meerkat.auth.fast_tokens.TokenAttempt` (user, mechanism, initiator hash, channel-binding "
    "data, user-agent id); the handler verifies it and sets acc.result. STOP: handled. "
    "When no handler stops, the mechanism is unknown. params: session.",
)
PASSWORD_CHANGED = Hook(
    "password_changed",
    "An account's password was changed (tokens and other credentials derived from the old "
    "one are to be revoked). acc: None. params: jid (bare).",
)
USER_AVAILABLE = Hook(
    "user_available_hook",
    "A session sent its initial presence. acc: Acc of the presence. params: session.",
)
UNSET_PRESENCE = Hook(
    "unset_presence_hook",
    "A session became unavailable (unavailable presence or disconnect). "
    "params: session, jid, status (on disconnect also sid, reason, was_available).",
)
SM_REGISTER_CONNECTION = Hook(
    "sm_register_connection_hook",
    "A session was opened (resource bound). params: session, jid, sid.",
)
SM_REMOVE_CONNECTION = Hook(
    "sm_remove_connection_hook",
    "A session was closed. params: session, jid, sid, reason, was_available. On a node "
    "cleaning up after a dead peer, session is None.",
)
SESSION_CLEANUP = Hook(
    "session_cleanup",
    "A session vanished without closing (its node died); run on a surviving node. params: jid.",
)

# -- routing -----------------------------------------------------------------------------
FILTER_LOCAL_PACKET = Hook(
    "filter_local_packet", "Run by the router before local delivery. STOP: drop the stanza."
)
OFFLINE_MESSAGE = Hook(
    "offline_message_hook",
    "A message for a local user with no session able to take it. STOP: handled (stored). "
    "If no handler stops, the router answers service-unavailable.",
)
PRESENCE_PROBE = Hook(
    "presence_probe_hook",
    "A presence probe for a local user (acc: Acc): answer it on the user's behalf. STOP: handled.",
)

# -- roster and presence -------------------------------------------------------------------
ROSTER_IN_SUBSCRIPTION = Hook(
    "roster_in_subscription",
    "An inbound subscription presence for a local user (acc: Acc). Result in "
    "acc.scratch['roster_in']: True when the stanza must be delivered to the user.",
)
ROSTER_OUT_SUBSCRIPTION = Hook(
    "roster_out_subscription",
    "An outbound subscription presence from a local user (acc: Acc) before it is routed.",
)
ROSTER_GET_SUBSCRIPTION_LISTS = Hook(
    "roster_get_subscription_lists",
    "Collects (acc: dict with 'from' and 'to' sets of bare Jids) for presence broadcast. "
    "params: jid; scratch (optional): the scratch dict of the presence Acc being processed, "
    "where mod_roster leaves the roster it read so that USER_AVAILABLE for the same presence "
    "does not read it again.",
)

# -- service discovery -----------------------------------------------------------------------
DISCO_LOCAL_FEATURES = Hook(
    "disco_local_features", "Collects the server's features (acc: list[str]). params: host, node."
)
DISCO_LOCAL_IDENTITY = Hook(
    "disco_local_identity",
    "Collects the server's identities (acc: list[Element]). params: host, node.",
)
DISCO_LOCAL_ITEMS = Hook(
    "disco_local_items", "Collects the server's items (acc: list[Element]). params: host, node."
)
DISCO_SM_FEATURES = Hook(
    "disco_sm_features", "Collects a user's account features (acc: list[str]). params: jid."
)
DISCO_SM_IDENTITY = Hook(
    "disco_sm_identity", "Collects a user's account identities (acc: list[Element])."
)

# -- accounts ------------------------------------------------------------------------------
REGISTER_USER = Hook("register_user", "An account was created. params: jid.")
REMOVE_USER = Hook(
    "remove_user", "An account is being removed: delete the user's data. params: jid."
)
RESEND_OFFLINE_MESSAGES = Hook(
    "resend_offline_messages_hook",
    "A session sent its initial presence: deliver stored messages. params: session.",
)


@dataclass(slots=True)
class _Entry:
    priority: int
    handler: Handler
    owner: object


class HookRegistry:
    """Handlers per (hook name, host type), kept sorted by priority."""

    def __init__(self, *, reraise: bool = False) -> None:
        self._chains: dict[tuple[str, str | None], list[_Entry]] = {}
        self._merged: dict[tuple[str, str | None], tuple[Handler, ...]] = {}
        """(hook, host type) -> its handlers and the all-hosts ones, in order (built on use,
        dropped on every change): the stanza path runs several hooks per stanza."""
        self._reraise = reraise
        self.generation = 0
        """Incremented whenever a handler is added or removed (for caches of hook results)."""

    @property
    def reraise(self) -> bool:
        """True in tests: errors in handlers propagate instead of being logged."""
        return self._reraise

    def add(
        self, hook: Hook, host_type: str | None, handler: Handler, priority: int, owner: object
    ) -> None:
        chain = self._chains.setdefault((hook.name, host_type), [])
        chain.append(_Entry(priority, handler, owner))
        chain.sort(key=lambda e: e.priority)
        self.generation += 1
        self._merged.clear()

    def remove_owner(self, owner: object) -> None:
        """Remove every handler a module (or other owner) added."""
        for key, chain in list(self._chains.items()):
            kept = [e for e in chain if e.owner is not owner]
            if kept:
                self._chains[key] = kept
            else:
                del self._chains[key]
        self.generation += 1
        self._merged.clear()

    def has_handlers(self, hook: Hook, host_type: str | None) -> bool:
        chain = self._merged.get((hook.name, host_type))
        if chain is None:
            chain = self._merge(hook, host_type)
        return bool(chain)

    def _merge(self, hook: Hook, host_type: str | None) -> tuple[Handler, ...]:
        """The handlers to run, in order: the host type's and the all-hosts ones (cached)."""
        specific = self._chains.get((hook.name, host_type), [])
        general = self._chains.get((hook.name, None), []) if host_type is not None else []
        entries = sorted(specific + general, key=lambda e: e.priority) if general else specific
        chain = self._merged[(hook.name, host_type)] = tuple(e.handler for e in entries)
        return chain

    async def run(
        self, hook: Hook, host_type: str | None, acc: Any, params: dict[str, Any] | None = None
    ) -> bool:
        """Run the chain; return True when a handler stopped it."""
        # Several hooks run per stanza: the cached chain is looked up inline.
        chain = self._merged.get((hook.name, host_type))
        if chain is None:
            chain = self._merge(hook, host_type)
        if not chain:
            return False
        p = params if params is not None else {}
        for handler in chain:
            try:
                result = await handler(acc, p)
            except Exception:
                if self._reraise:
                    raise
                log.exception("hook_handler_crashed hook=%s", hook.name)
                continue
            if result is STOP:
                return True
        return False
