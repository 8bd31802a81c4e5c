"""Meerkat: an XMPP server."""
