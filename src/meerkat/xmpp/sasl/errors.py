"""SASL failure conditions (RFC 6120 §6.5) and the one exception the mechanisms raise.

Every parser and state machine in this package reports bad input only by raising
`SaslFailure`; the c2s layer turns it into `<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>`.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["SaslCondition", "SaslFailure"]


class SaslCondition(StrEnum):
    """The defined `<failure/>` children of RFC 6120 §6.5."""

    ABORTED = "aborted"
    ACCOUNT_DISABLED = "account-disabled"
    CREDENTIALS_EXPIRED = "credentials-expired"
    ENCRYPTION_REQUIRED = "encryption-required"
    INCORRECT_ENCODING = "incorrect-encoding"
    INVALID_AUTHZID = "invalid-authzid"
    INVALID_MECHANISM = "invalid-mechanism"
    MALFORMED_REQUEST = "malformed-request"
    MECHANISM_TOO_WEAK = "mechanism-too-weak"
    NOT_AUTHORIZED = "not-authorized"
    TEMPORARY_AUTH_FAILURE = "temporary-auth-failure"


class SaslFailure(Exception):
    """Authentication failed with an RFC 6120 condition and an optional human-readable text.

    `text` is meant for the `<text/>` child; it never contains secrets.
    """

    def __init__(self, condition: SaslCondition, text: str = "") -> None:
        super().__init__(f"{condition.value}: {text}" if text else condition.value)
        self.condition = condition
        self.text = text

    def __repr__(self) -> str:
        return f"SaslFailure({self.condition.value!r}, {self.text!r})"
