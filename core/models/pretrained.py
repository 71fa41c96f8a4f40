"""Where ``pretrained`` weights come from: a local folder, and the network only when the user
allows it.

A ``pretrained`` value (the frozen encoders' ``model.encoder.params.pretrained``, any
component that calls ``from_pretrained``) must be an existing local folder (written by
``save_pretrained`` or ``hf download ID --local-dir DIR``). Anything else (a Hub id, a
missing path) is a one-line :class:`PretrainedNotLocalError` naming the config key and the
value, raised before ``transformers`` is called, unless ``AUDIO_CORE_ALLOW_DOWNLOADS=1``:
then the value goes to ``from_pretrained`` as it is (the Hugging Face cache, or the Hub).
A local folder is loaded inside :func:`offline`, so no network call is attempted for it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from audio_core.errors import ConfigError

#: Set to ``1`` to let a ``pretrained`` value that is not a local folder reach the Hub.
ALLOW_DOWNLOADS = "AUDIO_CORE_ALLOW_DOWNLOADS"


class PretrainedNotLocalError(ConfigError):
    """A ``pretrained`` value is not an existing local folder and downloads are not allowed."""


def downloads_allowed() -> bool:
    """Whether ``AUDIO_CORE_ALLOW_DOWNLOADS=1`` is set."""
    return os.environ.get(ALLOW_DOWNLOADS, "").strip() == "1"


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


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Hugging Face libraries in offline mode while the block runs (``HF_HUB_OFFLINE=1``,
    also for an already imported ``huggingface_hub``), restored afterwards."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved_env = {name: os.environ.get(name) for name in names}
    os.environ.update(dict.fromkeys(names, "1"))
    constants = None
    with contextlib.suppress(ImportError):
        from huggingface_hub import constants
    saved_flag = getattr(constants, "HF_HUB_OFFLINE", None)
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        for name, before in saved_env.items():
            if before is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = before
        if constants is not None:
            constants.HF_HUB_OFFLINE = saved_flag
