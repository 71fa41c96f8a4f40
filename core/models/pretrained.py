"""Where ``pretrained`` weights come from: a local folder, and the network only when the user
allows it.

A ``pretrained`` value (the frozen encoders' ``model.encoder.params.pretrained``, any
component that calls ``from_pretrained``) must be an existing local folder (written by
``save_pretrained`` or ``hf download ID --local-dir DIR``). Anything else (a Hub id, a
missing path) is a one-line :class:`PretrainedNotLocalError` naming the config key and the
value, raised before ``transformers`` is called, unless ``AUDIO_CORE_ALLOW_DOWNLOADS=1``:
then the value goes to ``from_pretrained`` as it is (the Hugging Face cache, or the Hub).
A local folder is loaded inside :func:`audio_core.network.offline`, so no network call is
attempted for it.
"""

from __future__ import annotations

import os
from pathlib import Path

from audio_core.errors import ConfigError
from audio_core.network import ALLOW_DOWNLOADS, downloads_allowed, offline

__all__ = ["ALLOW_DOWNLOADS", "PretrainedNotLocalError", "downloads_allowed", "offline",
           "resolve_pretrained"]


class PretrainedNotLocalError(ConfigError):
    """A ``pretrained`` value is not an existing local folder and downloads are not allowed."""


def resolve_pretrained(value: str | os.PathLike, key: str) -> tuple[str, bool]:
    """``(what to pass to from_pretrained, local_files_only)`` for config key ``key`` set to
    ``value``: ``(folder, True)`` for an existing local folder; ``(value, False)`` for
    anything else when downloads are allowed; otherwise :class:`PretrainedNotLocalError`."""
    folder = Path(value).expanduser()
    if folder.is_dir():
        return str(folder), True
    if downloads_allowed():
        return str(value), False
    what = "a file, not a folder" if folder.exists() else "not an existing local folder"
    raise PretrainedNotLocalError(
        f"{key}: '{value}' is {what}, and nothing is downloaded unless "
        f"{ALLOW_DOWNLOADS}=1; fetch the weights once (`hf download ID --local-dir DIR`) "
        f"and set {key}=DIR", key)
