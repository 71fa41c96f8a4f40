"""Loading files from run folders and exports without running code found in them.

Two kinds of files can carry code: pickles (``torch.load`` of DeepSpeed's engine states)
and nothing else we read (safetensors and JSON are data only; YAML goes through a safe
loader). Engine states are therefore unpickled with ``torch.load(weights_only=True)``
and an explicit allow-list of the few DeepSpeed classes a checkpoint legitimately holds
(:data:`ENGINE_STATE_GLOBALS`); anything else (``os.system``, ``builtins.exec``, a
class of some other package) makes the load fail with :class:`UnsafeCheckpointError`
before any of it runs.

Every failure here is an :class:`~audio_core.errors.AudioCoreError` naming the file.
"""

from __future__ import annotations

import contextlib
import importlib
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from audio_core.errors import AudioCoreError
from audio_core.files import check_readable

#: Classes (``module:qualname``) DeepSpeed's model/optimizer state files may contain.
#: Found with ``torch.serialization.get_unsafe_globals_in_checkpoint`` over ZeRO 0-3,
#: fp32/bf16 and CPU-offload checkpoints; extend only with plain data holders.
ENGINE_STATE_GLOBALS = (
    "deepspeed.runtime.fp16.loss_scaler:LossScaler",
    "deepspeed.runtime.fp16.loss_scaler:DynamicLossScaler",
    "deepspeed.runtime.zero.config:ZeroStageEnum",
    "deepspeed.utils.tensor_fragment:fragment_address",
)


class WeightsFileError(AudioCoreError):
    """A weights or state file is missing, truncated or not in the expected format."""


class UnsafeCheckpointError(WeightsFileError):
    """A checkpoint file holds Python objects outside the allow-list: it was not loaded."""


def _resolve(name: str) -> Any | None:
    module, _, qualname = name.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None  # another DeepSpeed version: its files cannot contain this class either
    return obj


def allowed_globals() -> list[Any]:
    """The objects of :data:`ENGINE_STATE_GLOBALS` that exist in this environment."""
    return [obj for obj in map(_resolve, ENGINE_STATE_GLOBALS) if obj is not None]


_UNSUPPORTED = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _foreign_globals(path: Path) -> list[str]:
    """Names of the globals in ``path``'s pickle outside the allow-list (read, not run)."""
    allowed = {name.replace(":", ".") for name in ENGINE_STATE_GLOBALS}
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # a damaged file: the loader's own message will do
        return []
    return [name for name in names if name not in allowed]


def load_engine_state(path: str | Path, map_location: Any = None) -> Any:
    """``torch.load`` of one engine state file, refusing anything but tensors, plain
    containers and :data:`ENGINE_STATE_GLOBALS`."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals(allowed_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _foreign_globals(path) or _UNSUPPORTED.findall(str(exc))
        what = f" ({', '.join(found)})" if found else ""
        raise UnsafeCheckpointError(
            f"refusing to load {path}: it holds Python objects outside audio-core's "
            f"allow-list{what}. A checkpoint written by audio-core never does, so this file "
            f"was altered or comes from elsewhere; nothing in it was run. Resume from another "
            f"checkpoint, or retrain.") from exc
    except FileNotFoundError as exc:
        raise WeightsFileError(f"{path} does not exist") from exc
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise WeightsFileError(f"{path} is truncated or corrupt and cannot be loaded "
                               f"({type(exc).__name__}: {str(exc)[:200]})") from exc


def make_checkpoint_loading_safe(ds_engine: Any) -> None:
    """Route every state file ``ds_engine`` (a ``DeepSpeedEngine``) reads through
    :func:`load_engine_state`, and refuse universal checkpoints, whose loader calls
    ``torch.load(weights_only=False)`` directly."""
    checkpoint_engine = getattr(ds_engine, "checkpoint_engine", None)
    if checkpoint_engine is not None:
        checkpoint_engine.load = load_engine_state


def check_not_universal(ds_engine: Any, role: str) -> None:
    """:class:`UnsafeCheckpointError` when ``checkpoint.load_universal`` is set."""
    flag = getattr(ds_engine, "load_universal_checkpoint", None)
    if callable(flag) and flag():
        raise UnsafeCheckpointError(
            f"engine '{role}': DeepSpeed universal checkpoints are loaded with "
            f"torch.load(weights_only=False), which can run code stored in the files; "
            f"audio-core does not load them. Remove deepspeed.checkpoint.load_universal.")


def load_safetensors(path: str | Path, what: str = "weights") -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, or :class:`WeightsFileError` naming it (missing,
    a folder, empty, truncated, or another format such as a pickle)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.exists():
        raise WeightsFileError(f"{what} file {path} does not exist")
    if not path.is_file():
        raise WeightsFileError(f"{what} file {path} is not a file")
    check_readable(path, f"{what} file")  # not "not a complete safetensors file"
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        size = path.stat().st_size
        hint = ""
        with contextlib.suppress(OSError), path.open("rb") as f:
            head = f.read(4)
            if head[:2] == b"PK" or head[:1] == b"\x80":
                hint = " It looks like a torch pickle; audio-core only loads safetensors."
        raise WeightsFileError(f"{what} file {path} ({size} bytes) is not a complete "
                               f"safetensors file ({str(exc)[:200]}).{hint}") from exc
