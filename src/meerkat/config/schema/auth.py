"""`[auth]`: authentication methods, password storage, SASL mechanisms, brute-force slowdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from meerkat.config.schema._util import check_min, check_unique, doc

AuthMethod = Literal["rdbms", "anonymous"]
HashName = Literal["sha", "sha224", "sha256", "sha384", "sha512"]
SaslMechanism = Literal[
    "scram_sha512_plus", "scram_sha512", "scram_sha384_plus", "scram_sha384",
    "scram_sha256_plus", "scram_sha256", "scram_sha224_plus", "scram_sha224",
    "scram_sha1_plus", "scram_sha1", "plain", "anonymous", "external",
]  # fmt: skip

#: The hash each SCRAM mechanism needs stored (MongooseIM's hash names).
SCRAM_HASHES: dict[str, str] = {
    "scram_sha1": "sha", "scram_sha224": "sha224", "scram_sha256": "sha256",
    "scram_sha384": "sha384", "scram_sha512": "sha512",
}  # fmt: skip


@dataclass(frozen=True)
class PasswordConfig:
    """`[auth.password]`: how passwords are stored."""

    format: Literal["scram", "plain"] = field(
        default="scram",
        metadata=doc(
            '"scram": only SCRAM keys (salt, stored key, server key) are stored; '
            '"plain": the password itself (not recommended).'
        ),
    )
    hash: tuple[HashName, ...] = field(
        default=("sha", "sha256", "sha512"),
        metadata=doc("Hashes SCRAM keys are stored for; each SCRAM mechanism needs its own."),
    )
    scram_iterations: int = field(
        default=10000, metadata=doc("PBKDF2 iteration count of newly stored SCRAM keys.")
    )

    def validate(self) -> list[str]:
        """At least one hash, no repeats, a sane iteration count."""
        problems = check_unique("hash", list(self.hash))
        if self.format == "scram" and not self.hash:
            problems.append('hash: at least one hash is required with format = "scram"')
        problems += check_min("scram_iterations", self.scram_iterations, 1)
        return problems


@dataclass(frozen=True)
class AnonymousConfig:
    """`[auth.anonymous]`: the anonymous method (temporary random users)."""

    allow_multiple_connections: bool = field(
        default=False, metadata=doc("Allow several sessions with one anonymous user name.")
    )
    protocol: Literal["sasl_anon", "login_anon", "both"] = field(
        default="sasl_anon",
        metadata=doc(
            '"sasl_anon": SASL ANONYMOUS; "login_anon": any login/password is '
            'accepted as a new anonymous user; "both".'
        ),
    )


@dataclass(frozen=True)
class RdbmsAuthConfig:
    """`[auth.rdbms]`: users and SCRAM keys in the `default` database pool."""

    users_number_estimate: bool = field(
        default=False,
        metadata=doc("Count users with the database's fast estimate instead of COUNT(*)."),
    )


@dataclass(frozen=True)
class SlowdownConfig:
    """`[auth.slowdown]`: delays after failed logins from one IP address (brute-force guard)."""

    failures_before_delay: int = field(
        default=3, metadata=doc("Failed authentications from one address before delays start.")
    )
    delay: int = field(
        default=1000,
        metadata=doc("Milliseconds the first delayed failure waits; doubles with each one."),
    )
    max_delay: int = field(default=30000, metadata=doc("Upper bound of the delay, in ms."))
    window: int = field(
        default=600,
        metadata=doc("Seconds after the last failure when an address's count is forgotten."),
    )

    def validate(self) -> list[str]:
        """Non-negative counts, delays ordered."""
        problems = check_min("failures_before_delay", self.failures_before_delay, 0)
        problems += check_min("delay", self.delay, 0)
        problems += check_min("max_delay", self.max_delay, self.delay)
        problems += check_min("window", self.window, 1)
        return problems


@dataclass(frozen=True)
class AuthConfig:
    """`[auth]`: how users authenticate."""

    methods: tuple[AuthMethod, ...] = field(
        default=("rdbms",),
        metadata=doc(
            'Authentication methods, tried in order: "rdbms" (users in the '
            '`default` database pool), "anonymous".'
        ),
    )
    password: PasswordConfig = field(
        default_factory=PasswordConfig, metadata=doc("Password storage.")
    )
    sasl_mechanisms: tuple[SaslMechanism, ...] = field(
        default=(
            "scram_sha512_plus", "scram_sha512", "scram_sha256_plus", "scram_sha256",
            "scram_sha1_plus", "scram_sha1", "plain",
        ),
        metadata=doc("SASL mechanisms offered, in order of preference. `_plus` variants "
                     "(channel binding) are offered only over TLS."),
    )  # fmt: skip
    max_users_per_domain: int | Literal["infinity"] = field(
        default="infinity", metadata=doc('Registered users allowed per domain, or "infinity".')
    )
    anonymous: AnonymousConfig = field(
        default_factory=AnonymousConfig, metadata=doc("Anonymous method settings.")
    )
    rdbms: RdbmsAuthConfig = field(
        default_factory=RdbmsAuthConfig, metadata=doc("Database method settings.")
    )
    slowdown: SlowdownConfig = field(
        default_factory=SlowdownConfig, metadata=doc("Delays after failed logins.")
    )

    def validate(self) -> list[str]:
        """Methods present; SCRAM mechanisms have their hash stored."""
        problems: list[str] = []
        if not self.methods:
            problems.append("methods: at least one method is required")
        problems += check_unique("methods", list(self.methods))
        problems += check_unique("sasl_mechanisms", list(self.sasl_mechanisms))
        if not self.sasl_mechanisms:
            problems.append("sasl_mechanisms: at least one mechanism is required")
        if self.password.format == "scram":
            for index, mech in enumerate(self.sasl_mechanisms):
                needed = SCRAM_HASHES.get(mech.removesuffix("_plus"))
                if needed is not None and needed not in self.password.hash:
                    problems.append(
                        f'sasl_mechanisms[{index}]: {mech} needs "{needed}" in password.hash'
                    )
        if isinstance(self.max_users_per_domain, int):
            problems += check_min("max_users_per_domain", self.max_users_per_domain, 0)
        return problems
