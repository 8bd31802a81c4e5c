"""Checks that an operation's module and store are there (MongooseIM's ``@use`` directive)."""

from __future__ import annotations

from typing import Any

from .context import ApiContext
from .errors import ApiError

__all__ = ["require_module"]


def require_module(ctx: ApiContext, module: str, store: str) -> Any:
    """The feature store ``store`` when ``module`` is running; else ``deps_not_loaded``.

    A context without a ``modules`` collection cannot tell which modules run, so only the
    store is checked then.
    """
    modules = getattr(ctx, "modules", None)
    found = getattr(ctx.stores, store, None) if ctx.stores is not None else None
    if (modules is not None and module not in modules) or found is None:
        raise ApiError(
            "deps_not_loaded",
            "Some of the required modules are not loaded",
            {"not_loaded_modules": [module]},
        )
    return found
