"""Whether audio-core may use the network: only with ``AUDIO_CORE_ALLOW_DOWNLOADS=1``.

Light on purpose (no torch): the CLI checks it before every command and sets
``HF_HUB_OFFLINE=1`` when downloads are not allowed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

#: Set to ``1`` to let a ``pretrained`` value that is not a local folder reach the Hub.
ALLOW_DOWNLOADS = "AUDIO_CORE_ALLOW_DOWNLOADS"


def downloads_allowed() -> bool:
    """Whether ``AUDIO_CORE_ALLOW_DOWNLOADS=1`` is set."""
    return os.environ.get(ALLOW_DOWNLOADS, "").strip() == "1"


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
