"""The feature modules, by their MongooseIM config keys.

`MODULES` is the static registry the server hands to `ModuleManager` and the config loader;
`DEFAULT_MODULES` the modules (with their default config, `None`) enabled when the config
file has no ``[modules]`` section.
"""

from __future__ import annotations

from ..core.modules import Module
from .caps import CapsModule, verification_string
from .carbons import CarbonsModule
from .csi import CsiModule
from .disco import DiscoModule
from .fast_auth_token import FastAuthTokenModule
from .last import LastModule
from .offline import OfflineModule
from .ping import PingModule
from .presence import PresenceModule
from .private import PrivateModule
from .register import RegisterModule
from .roster import RosterModule
from .stream_management import StreamManagementModule
from .vcard import VcardModule
from .version import VersionModule

MODULES: dict[str, type[Module]] = {
    cls.name: cls
    for cls in (
        CapsModule,
        CarbonsModule,
        CsiModule,
        DiscoModule,
        FastAuthTokenModule,
        LastModule,
        OfflineModule,
        PingModule,
        PresenceModule,
        PrivateModule,
        RegisterModule,
        RosterModule,
        StreamManagementModule,
        VcardModule,
        VersionModule,
    )
}

DEFAULT_MODULES: dict[str, object] = {
    name: None
    for name in (
        "mod_disco",
        "mod_roster",
        "mod_presence",
        "mod_offline",
        "mod_ping",
        "mod_last",
        "mod_vcard",
        "mod_private",
        "mod_version",
        "mod_caps",
        "mod_carboncopy",
        "mod_csi",
        "mod_stream_management",
        "mod_fast_auth_token",
    )
}

__all__ = [
    "DEFAULT_MODULES",
    "MODULES",
    "CapsModule",
    "CarbonsModule",
    "CsiModule",
    "DiscoModule",
    "FastAuthTokenModule",
    "LastModule",
    "OfflineModule",
    "PingModule",
    "PresenceModule",
    "PrivateModule",
    "RegisterModule",
    "RosterModule",
    "StreamManagementModule",
    "VcardModule",
    "VersionModule",
    "verification_string",
]
