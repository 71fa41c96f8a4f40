"""Process-group setup for the ``deepspeed`` launcher, ``torchrun`` and plain ``python``.

Both launchers export ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT``; a plain ``python`` run has none of them and becomes a world of one (rank
0, ``127.0.0.1`` on a free port). The backend is ``nccl`` when CUDA is available and
``gloo`` otherwise; ``AUDIO_CORE_DIST_BACKEND`` overrides it.

DeepSpeed's communication layer (``deepspeed.comm``) is initialised on top of the torch
process group, so ``deepspeed.initialize`` finds it ready. On CPU that first call JIT-builds
DeepSpeed's shared-memory comm op (about 80 s, cached under ``TORCH_EXTENSIONS_DIR``).

This module is also the one place that answers "is this run distributed?"
(:func:`is_initialized`, :func:`is_distributed`, :func:`rank`, :func:`world_size`) and holds
the small collectives every rank must call together (:func:`broadcast_`,
:func:`all_reduce_sum_`, :func:`all_finite`): each is a no-op (or local) outside a process
group of more than one rank. Importing it does not import torch, so light modules (trackers,
datasets' rank lookup) may use it freely.
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import Tensor

BACKEND_ENV = "AUDIO_CORE_DIST_BACKEND"
LAUNCHER_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def free_port() -> int:
    """A TCP port on localhost that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def default_backend() -> str:
    """``$AUDIO_CORE_DIST_BACKEND``, else ``nccl`` with CUDA, else ``gloo``."""
    import torch

    return os.environ.get(BACKEND_ENV) or ("nccl" if torch.cuda.is_available() else "gloo")


def launched() -> bool:
    """True when a launcher (``deepspeed``, ``torchrun``) set the rendezvous variables."""
    return all(key in os.environ for key in LAUNCHER_ENV)


def set_single_process_env() -> None:
    """Fill in the rendezvous variables of a world of one, keeping any already set."""
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(free_port()))
    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"),
                       ("LOCAL_WORLD_SIZE", "1")):
        os.environ.setdefault(key, value)


def init_distributed(backend: str | None = None, timeout_s: float = 600.0) -> None:
    """Initialise torch.distributed and ``deepspeed.comm`` once; later calls do nothing.

    Works under ``deepspeed``/``torchrun`` (environment set by the launcher) and plain
    ``python`` (a world of one). With CUDA, each process uses device ``LOCAL_RANK``.
    """
    import torch
    import torch.distributed as dist

    if is_initialized():
        return
    if not launched():
        set_single_process_env()
    os.environ.setdefault("LOCAL_RANK", os.environ.get("RANK", "0"))
    backend = backend or default_backend()
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://",
                                timeout=timedelta(seconds=timeout_s))
    import deepspeed

    deepspeed.init_distributed(dist_backend=backend, auto_mpi_discovery=False, verbose=False,
                               timeout=timedelta(seconds=timeout_s))


# -- "is this run distributed?" -----------------------------------------------------------
def _torch_distributed() -> Any:
    """``torch.distributed`` when torch is already imported and built with it, else ``None``
    (a process that never imported torch has no process group: nothing to import)."""
    if "torch" not in sys.modules:
        return None
    import torch.distributed as dist

    return dist if dist.is_available() else None


def is_initialized() -> bool:
    """True once the torch process group exists (any number of ranks)."""
    dist = _torch_distributed()
    return dist is not None and dist.is_initialized()


def is_distributed() -> bool:
    """True inside an initialised process group of more than one rank: collectives are
    needed (and every rank must make them)."""
    return is_initialized() and world_size() > 1


def rank() -> int:
    """Global rank: the process group's when initialised, else ``$RANK``, else 0."""
    if is_initialized():
        return _torch_distributed().get_rank()
    return int(os.environ.get("RANK", 0))


def local_rank() -> int:
    """Rank on this node; selects the CUDA device."""
    return int(os.environ.get("LOCAL_RANK", 0))


def world_size() -> int:
    """Number of processes: the process group's when initialised, else ``$WORLD_SIZE``
    (set by a launcher before initialisation), else 1."""
    if is_initialized():
        return _torch_distributed().get_world_size()
    return int(os.environ.get("WORLD_SIZE", 1))


def is_main_process() -> bool:
    """True on global rank 0."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank; a no-op without a process group."""
    if is_initialized():
        _torch_distributed().barrier()


def device() -> torch.device:
    """This process's compute device: ``cuda:LOCAL_RANK`` or ``cpu``."""
    import torch

    if torch.cuda.is_available() and default_backend() == "nccl":
        return torch.device("cuda", local_rank())
    return torch.device("cpu")


def collective_device() -> torch.device:
    """Where tensors for a collective must live: the current CUDA device under NCCL,
    else the CPU (gloo, or no process group)."""
    import torch

    if is_initialized() and _torch_distributed().get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# -- collectives that are no-ops in a world of one -------------------------------------------
def broadcast_(tensor: Tensor, src: int = 0) -> Tensor:
    """Overwrite ``tensor`` in place with rank ``src``'s copy when distributed; returns it."""
    if is_distributed():
        _torch_distributed().broadcast(tensor, src)
    return tensor


def all_reduce_sum_(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` in place over the ranks when distributed; returns it."""
    if is_distributed():
        _torch_distributed().all_reduce(tensor)
    return tensor


def all_reduce_max_(tensor: Tensor) -> Tensor:
    """Replace ``tensor`` in place by its elementwise maximum over the ranks when
    distributed; returns it."""
    if is_distributed():
        dist = _torch_distributed()
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def gather_objects(value: Any) -> list[Any]:
    """``value`` (any picklable object) of every rank, in rank order; ``[value]`` without a
    process group of several ranks (a collective otherwise: every rank must call it)."""
    if not is_distributed():
        return [value]
    out: list[Any] = [None] * world_size()
    _torch_distributed().all_gather_object(out, value)
    return out


def all_finite(*tensors: Tensor) -> bool:
    """True when every value of every tensor is finite on every rank.

    Local check, then (when distributed) one MAX all-reduce of a "some value is not
    finite" flag, so every rank returns the same answer: a collective, every rank must call
    it, also with no tensors.
    """
    import torch

    bad = any(not bool(torch.isfinite(t.detach()).all()) for t in tensors)
    if not is_distributed():
        return not bad
    flag = torch.tensor([float(bad)], device=collective_device())
    return all_reduce_max_(flag).item() == 0


def teardown() -> None:
    """Destroy the process group (``deepspeed.comm`` and torch); safe to call twice."""
    if not is_initialized():
        return
    barrier()
    try:
        import deepspeed.comm as ds_comm

        if ds_comm.is_initialized():
            ds_comm.destroy_process_group()
    except (ImportError, AttributeError, AssertionError):
        pass
    dist = _torch_distributed()
    if dist is not None and dist.is_initialized():
        dist.destroy_process_group()

