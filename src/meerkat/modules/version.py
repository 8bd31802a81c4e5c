"""XEP-0092 software version: the server's name, version and (optionally) operating system."""

from __future__ import annotations

import platform
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from ..core.acc import Acc
from ..core.iq import IqSpec
from ..core.modules import Module
from ..xmpp import ns
from ..xmpp.element import Element
from ..xmpp.errors import StanzaError
from ._common import doc

SERVER_NAME = "Meerkat"


def server_version() -> str:
    try:
        return metadata.version("meerkat")
    except metadata.PackageNotFoundError:
        return "0.0.0"


@dataclass(frozen=True)
class VersionConfig:
    """`[modules.mod_version]`."""

    os_info: bool = field(default=False, metadata=doc("Also tell the operating system."))


class VersionModule(Module):
    """XEP-0092: answers ``jabber:iq:version`` queries to the server."""

    name = "mod_version"
    Config = VersionConfig

    def __init__(self, ctx: Any, config: VersionConfig) -> None:
        super().__init__(ctx, config)
        self.config: VersionConfig = config
        self._version = server_version()

    def iq_handlers(self) -> Iterable[IqSpec]:
        return (IqSpec(ns.VERSION, self.handle, "local"),)

    def features(self) -> Iterable[str]:
        return (ns.VERSION,)

    async def handle(self, acc: Acc, q: Element) -> Element:
        if acc.element.attrs.get("type") != "get":
            raise StanzaError("not-allowed")
        reply = Element("query", ns.VERSION)
        reply.add("name", text=SERVER_NAME)
        reply.add("version", text=self._version)
        if self.config.os_info:
            reply.add("os", text=f"{platform.system()} {platform.release()}")
        return reply
