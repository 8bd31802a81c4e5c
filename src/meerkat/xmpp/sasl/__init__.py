"""SASL for XMPP (RFC 6120 §6): pure mechanisms, no I/O, no clock, no randomness.

- `scram`: SCRAM-SHA-1/224/256/384/512 and -PLUS, server and client state machines.
- `plain`: PLAIN message parsing.
- `channel_binding`: tls-exporter and tls-server-end-point data from TLS-layer bytes.
- `mechanisms`: names, config mapping and what to offer on a connection.
All bad input is reported as `SaslFailure(condition, text)`.
"""

from .channel_binding import available_channel_bindings
from .errors import SaslCondition, SaslFailure
from .mechanisms import from_config, offered_mechanisms
from .plain import PlainCredentials, parse_plain
from .scram import ScramClient, ScramCredentials, ScramResult, ScramServer

__all__ = [
    "PlainCredentials",
    "SaslCondition",
    "SaslFailure",
    "ScramClient",
    "ScramCredentials",
    "ScramResult",
    "ScramServer",
    "available_channel_bindings",
    "from_config",
    "offered_mechanisms",
    "parse_plain",
]
