"""Import optional metric packages with an error that says how to install them."""

from __future__ import annotations

import importlib
from types import ModuleType

from audio_core.errors import MissingPackageError

#: The extra of audio-core that installs every optional evaluation package.
EVAL_EXTRA = "pip install 'audio-core[eval]'"


def require(module: str, package: str, what: str) -> ModuleType:
    """``import module``, or :class:`MissingPackageError` naming ``package`` and ``what``
    needs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingPackageError(
            f"{what} needs the '{package}' package, which is not installed ({err}); install "
            f"it with `pip install {package}` or all evaluation packages with "
            f"`{EVAL_EXTRA}`") from None
