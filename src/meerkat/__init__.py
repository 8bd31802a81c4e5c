"""Meerkat: an XMPP server with MongooseIM's feature set, clustered without ceremony."""

__version__ = "0.1.0"
