"""RFC 6121 Appendix A, row by row: every subscription presence in every state, both ways."""

from __future__ import annotations

import itertools

import pytest

from meerkat.modules.roster.states import ALL_STATES, SubState, inbound, outbound


def st(name: str, approved: bool = False) -> SubState:
    """A state in the RFC's notation: "None", "None + Pending Out", "To + Pending In" ..."""
    parts = [p.strip() for p in name.split("+")]
    sub = parts[0].lower()
    pending_out = "Pending Out" in parts or "Pending Out/In" in parts
    pending_in = "Pending In" in parts or "Pending Out/In" in parts
    return SubState(sub, pending_out, pending_in, approved)  # type: ignore[arg-type]


STATES = [
    "None", "None + Pending Out", "None + Pending In", "None + Pending Out/In",
    "To", "To + Pending In", "From", "From + Pending Out", "Both",
]  # fmt: skip

# A.2.1 - A.2.4: existing state -> new state (same: no change)
OUTBOUND = {
    "subscribe": {
        "None": "None + Pending Out", "None + Pending Out": "None + Pending Out",
        "None + Pending In": "None + Pending Out/In",
        "None + Pending Out/In": "None + Pending Out/In", "To": "To",
        "To + Pending In": "To + Pending In", "From": "From + Pending Out",
        "From + Pending Out": "From + Pending Out", "Both": "Both",
    },
    "unsubscribe": {
        "None": "None", "None + Pending Out": "None", "None + Pending In": "None + Pending In",
        "None + Pending Out/In": "None + Pending In", "To": "None",
        "To + Pending In": "None + Pending In", "From": "From", "From + Pending Out": "From",
        "Both": "From",
    },
    "subscribed": {
        "None": "None", "None + Pending Out": "None + Pending Out", "None + Pending In": "From",
        "None + Pending Out/In": "From + Pending Out", "To": "To", "To + Pending In": "Both",
        "From": "From", "From + Pending Out": "From + Pending Out", "Both": "Both",
    },
    "unsubscribed": {
        "None": "None", "None + Pending Out": "None + Pending Out", "None + Pending In": "None",
        "None + Pending Out/In": "None + Pending Out", "To": "To",
        "To + Pending In": "To", "From": "None", "From + Pending Out": "None + Pending Out",
        "Both": "To",
    },
}  # fmt: skip

# A.3.1 - A.3.4: existing state -> (deliver?, new state)
INBOUND = {
    "subscribe": {
        "None": (True, "None + Pending In"),
        "None + Pending Out": (True, "None + Pending Out/In"),
        "None + Pending In": (False, "None + Pending In"),
        "None + Pending Out/In": (False, "None + Pending Out/In"),
        "To": (True, "To + Pending In"), "To + Pending In": (False, "To + Pending In"),
        "From": (False, "From"), "From + Pending Out": (False, "From + Pending Out"),
        "Both": (False, "Both"),
    },
    "unsubscribe": {
        "None": (False, "None"), "None + Pending Out": (False, "None + Pending Out"),
        "None + Pending In": (True, "None"), "None + Pending Out/In": (True, "None + Pending Out"),
        "To": (False, "To"), "To + Pending In": (True, "To"), "From": (True, "None"),
        "From + Pending Out": (True, "None + Pending Out"), "Both": (True, "To"),
    },
    "subscribed": {
        "None": (False, "None"), "None + Pending Out": (True, "To"),
        "None + Pending In": (False, "None + Pending In"),
        "None + Pending Out/In": (True, "To + Pending In"), "To": (False, "To"),
        "To + Pending In": (False, "To + Pending In"), "From": (False, "From"),
        "From + Pending Out": (True, "Both"), "Both": (False, "Both"),
    },
    "unsubscribed": {
        "None": (False, "None"), "None + Pending Out": (True, "None"),
        "None + Pending In": (False, "None + Pending In"),
        "None + Pending Out/In": (True, "None + Pending In"), "To": (True, "None"),
        "To + Pending In": (True, "None + Pending In"), "From": (False, "From"),
        "From + Pending Out": (True, "From"), "Both": (True, "From"),
    },
}  # fmt: skip

CASES = list(itertools.product(["subscribe", "unsubscribe", "subscribed", "unsubscribed"], STATES))


def test_the_nine_states_are_the_tables_keys() -> None:
    assert sorted(st(s).key for s in STATES) == sorted(ALL_STATES)


@pytest.mark.parametrize(("ptype", "state"), CASES)
def test_outbound_subscription_presence_follows_appendix_a2(ptype: str, state: str) -> None:
    result = outbound(st(state), ptype)
    new = st(OUTBOUND[ptype][state])
    preapproval = ptype == "subscribed" and state in ("None", "None + Pending Out", "To")
    assert result.state == (SubState(new.sub, new.pending_out, new.pending_in, True)
                            if preapproval else new)  # fmt: skip
    assert result.changed == (new != st(state) or preapproval)
    if ptype in ("subscribe", "unsubscribe"):
        assert result.route
    else:
        assert result.route == (new != st(state))


@pytest.mark.parametrize(("ptype", "state"), CASES)
def test_inbound_subscription_presence_follows_appendix_a3(ptype: str, state: str) -> None:
    result = inbound(st(state), ptype)
    deliver, new = INBOUND[ptype][state]
    assert result.state == st(new)
    assert result.deliver == deliver
    assert result.changed == (st(new) != st(state))
    already_approved = ptype == "subscribe" and state.split(" ")[0] in ("From", "Both")
    assert result.auto_reply == already_approved


@pytest.mark.parametrize(
    ("state", "new"),
    [("None", "From"), ("None + Pending Out", "From + Pending Out"), ("To", "Both")],
)
def test_preapproved_subscribe_is_approved_without_asking_the_user(state: str, new: str) -> None:
    result = inbound(st(state, approved=True), "subscribe")
    assert result.state == st(new)  # the pre-approval is consumed
    assert result.changed and result.auto_reply and not result.deliver


def test_preapproval_survives_unrelated_changes_and_unsubscribed_cancels_it() -> None:
    pre = outbound(st("None"), "subscribed").state
    assert pre == st("None", approved=True)
    asked = outbound(pre, "subscribe").state
    assert asked == st("None + Pending Out", approved=True)
    cancelled = outbound(asked, "unsubscribed")
    assert cancelled.state == st("None + Pending Out") and cancelled.changed
    assert not cancelled.route


def test_preapproval_is_not_routed() -> None:
    assert not outbound(st("To"), "subscribed").route


def test_ask_encoding_round_trips_for_every_state() -> None:
    for name in STATES:
        s = st(name, approved=True)
        assert SubState.from_ask(s.sub, s.ask, True) == s


def test_only_a_lone_inbound_request_is_hidden() -> None:
    assert [n for n in STATES if st(n).hidden] == ["None + Pending In"]
