"""XEP-0115 entity capabilities: the server advertises a hash of its own disco#info.

`verification_string` is the §5.1 algorithm (identities, features, extended forms, each
sorted, joined with ``<``, SHA-1, base64) as a pure function. After authentication the
server adds ``<c hash="sha-1" node=... ver=.../>`` to the stream features
(C2S_STREAM_FEATURES) and answers disco#info for ``node#ver`` with the same information
(DISCO_LOCAL_IDENTITY / DISCO_LOCAL_FEATURES). Client capabilities (the PEP ``+notify``
filter of MongooseIM) are not handled here yet.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.hooks import C2S_STREAM_FEATURES, DISCO_LOCAL_FEATURES, DISCO_LOCAL_IDENTITY
from ..core.modules import HookSpec, Module
from ..xmpp import ns
from ..xmpp.element import Element
from ._common import doc
from .disco import DiscoInfo, DiscoModule

Identity = tuple[str, str, str, str]  # category, type, xml:lang, name
Form = dict[str, list[str]]  # var -> values; FORM_TYPE included


def verification_string(
    identities: Iterable[Identity], features: Iterable[str], forms: Sequence[Form] = ()
) -> str:
    """XEP-0115 §5.1: the base64 SHA-1 of the sorted identities, features and forms."""
    parts = ["/".join(i) for i in sorted(identities)]
    parts += sorted(features)
    for form in sorted(forms, key=lambda f: f.get("FORM_TYPE", [""])[0]):
        parts.append(form.get("FORM_TYPE", [""])[0])
        for var in sorted(v for v in form if v != "FORM_TYPE"):
            parts.append(var)
            parts.extend(sorted(form[var]))
    s = "".join(p + "<" for p in parts)
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


def identities_of(elements: Iterable[Element]) -> list[Identity]:
    return [
        (
            el.attrs.get("category", ""),
            el.attrs.get("type", ""),
            el.attrs.get(f"{{{ns.XML}}}lang", el.attrs.get("xml:lang", "")),
            el.attrs.get("name", ""),
        )
        for el in elements
    ]


def forms_of(elements: Iterable[Element]) -> list[Form]:
    out: list[Form] = []
    for x in elements:
        form: Form = {}
        for f in x.find_all("field"):
            form[f.attrs.get("var", "")] = [v.text for v in f.find_all("value")]
        out.append(form)
    return out


@dataclass(frozen=True)
class CapsConfig:
    """`[modules.mod_caps]`."""

    node: str = field(
        default="https://github.com/meerkat-xmpp/meerkat",
        metadata=doc("The caps node: a URI naming the software."),
    )


class CapsModule(Module):
    """XEP-0115: the server's own capabilities in stream features."""

    name = "mod_caps"
    Config = CapsConfig
    depends = ("mod_disco",)

    def __init__(self, ctx: Any, config: CapsConfig) -> None:
        super().__init__(ctx, config)
        self.config: CapsConfig = config
        self._vers: dict[str, tuple[object, str | None]] = {}
        """host -> (what the server's info depends on, its verification string)."""

    def hooks(self) -> Iterable[HookSpec]:
        return (
            HookSpec(C2S_STREAM_FEATURES, self.on_stream_features),
            HookSpec(DISCO_LOCAL_IDENTITY, self.on_disco_identity),
            HookSpec(DISCO_LOCAL_FEATURES, self.on_disco_features),
        )

    async def _info(self, host: str) -> DiscoInfo | None:
        disco = self.ctx.module("mod_disco")
        if not isinstance(disco, DiscoModule):
            return None
        return await disco.local_info(host)

    async def ver(self, host: str) -> str | None:
        info = await self._info(host)
        if info is None:
            return None
        return verification_string(
            identities_of(info.identities), info.features, forms_of(info.forms)
        )

    async def cached_ver(self, host: str) -> str | None:
        """`ver`, computed again only when the modules or hook handlers changed (it is in
        every authenticated stream's features, and computing it runs the disco hooks)."""
        basis = (self.ctx.hooks.generation, tuple(self.ctx.modules))
        hit = self._vers.get(host)
        if hit is not None and hit[0] == basis:
            return hit[1]
        ver = await self.ver(host)
        self._vers[host] = (basis, ver)
        return ver

    async def on_stream_features(self, acc: list[Element], params: dict[str, Any]) -> object:
        host = params["session"].host_type
        ver = await self.cached_ver(host)
        if ver is not None:
            attrs = {"hash": "sha-1", "node": self.config.node, "ver": ver}
            acc.append(Element("c", ns.CAPS, attrs))
        return None

    async def _node_info(self, params: dict[str, Any]) -> DiscoInfo | None:
        """The server's info when ``node`` is our ``node#ver``."""
        node: str = params.get("node") or ""
        prefix = self.config.node + "#"
        if not node.startswith(prefix):
            return None
        info = await self._info(params["host"])  # runs these hooks again, for node ""
        if info is None:
            return None
        ver = verification_string(
            identities_of(info.identities), info.features, forms_of(info.forms)
        )
        return info if node == prefix + ver else None

    async def on_disco_identity(self, acc: list[Element], params: dict[str, Any]) -> object:
        info = await self._node_info(params)
        if info is not None:
            acc.extend(info.identities)
        return None

    async def on_disco_features(self, acc: list[str], params: dict[str, Any]) -> object:
        info = await self._node_info(params)
        if info is not None:
            acc.extend(info.features)
        return None
