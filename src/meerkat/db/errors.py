"""Errors raised by the storage layer.

Callers (stores, modules, the admin API) catch these, never a driver's own exceptions:
every driver error is translated at the adapter boundary (`meerkat.db.drivers`).
"""

from __future__ import annotations


class DatabaseError(Exception):
    """A query failed for a reason that retrying will not fix (bad SQL, constraint...)."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached, refused us, or did not answer within the timeout.

    The pool drops the broken connection and reconnects on the next query, so callers may
    simply retry later.
    """


class QueryTimeout(DatabaseUnavailable):
    """A query (including waiting for a free connection) exceeded `query_timeout`."""


class IntegrityError(DatabaseError):
    """A constraint (primary key, unique, not null) rejected the statement."""


class TransactionConflict(DatabaseError):
    """Deadlock, serialization failure or a busy SQLite file: the transaction may be retried."""


class SchemaError(DatabaseError):
    """The database schema is missing, incomplete, too old or too new for this code."""
