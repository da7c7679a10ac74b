"""franky, imported only when a Franka is actually used: the rest of Capstan runs without it."""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = "pip install 'capstan[franka]'"


class FrankyMissingError(RuntimeError):
    """franky (or franky-sim) is not installed; the message says how to install it."""


def load(module: str = "franky") -> ModuleType:
    """Import `module` (franky, or a franky_sim module), or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise FrankyMissingError(
            f"the Franka backend needs {module.split('.')[0]!r}, which is not installed ({exc}); "
            f"install it with: {INSTALL_HINT}"
        ) from None
