"""Configuration: `meerkat.toml` (MongooseIM's `mongooseim.toml` shape) -> frozen dataclasses.

The whole file is validated before anything starts; every problem is reported at once as
`path: problem` in one `ConfigError`. Public surface:

* `load_config(path, module_configs, default_modules)` -> `ServerConfig`
  (`config_from_toml`, `config_from_dict` for text and parsed data);
* `ServerConfig` and its section classes (`meerkat.config.schema`), `ServerConfig.for_host`;
* `match_rule` / `match_acl`: access rule evaluation (`constant_value`: a rule's value when it
  is the same for everyone);
* `Loader`: the generic TOML -> dataclass builder, for module `Config` classes and tests;
* `markdown_docs`: the option reference written to `docs/configuration.md`;
* `pool_settings`: a database pool as `meerkat.db.settings.DatabaseSettings`;
* `cluster_secret`: the configured or generated (`<data_dir>/cluster.secret`) link secret.
"""

from meerkat.config.access import constant_value, match_acl, match_rule
from meerkat.config.docgen import markdown_docs
from meerkat.config.errors import ConfigError
from meerkat.config.load import config_from_dict, config_from_toml, load_config
from meerkat.config.loader import Loader
from meerkat.config.pools import pool_settings
from meerkat.config.schema import HostSettings, ServerConfig
from meerkat.config.secret_file import cluster_secret

__all__ = [
    "ConfigError",
    "HostSettings",
    "Loader",
    "ServerConfig",
    "cluster_secret",
    "config_from_dict",
    "config_from_toml",
    "constant_value",
    "load_config",
    "markdown_docs",
    "match_acl",
    "match_rule",
    "pool_settings",
]
