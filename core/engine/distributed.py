"""Process-group setup for the ``deepspeed`` launcher, ``torchrun`` and plain ``python``.

Both launchers export ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT``; a plain ``python`` run has none of them and becomes a world of one (rank
0, ``127.0.0.1`` on a free port). The backend is ``nccl`` when CUDA is available and
``gloo`` otherwise; ``AUDIO_CORE_DIST_BACKEND`` overrides it.

DeepSpeed's communication layer (``deepspeed.comm``) is initialised on top of the torch
process group, so ``deepspeed.initialize`` finds it ready. On CPU that first call JIT-builds
DeepSpeed's shared-memory comm op (about 80 s, cached under ``TORCH_EXTENSIONS_DIR``).
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import torch
import torch.distributed as dist

BACKEND_ENV = "AUDIO_CORE_DIST_BACKEND"
LAUNCHER_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def free_port() -> int:
    """A TCP port on localhost that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def default_backend() -> str:
    """``$AUDIO_CORE_DIST_BACKEND``, else ``nccl`` with CUDA, else ``gloo``."""
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


def is_initialized() -> bool:
    """True once the torch process group exists."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """Global rank (0 before initialisation)."""
    return dist.get_rank() if is_initialized() else int(os.environ.get("RANK", 0))


def local_rank() -> int:
    """Rank on this node; selects the CUDA device."""
    return int(os.environ.get("LOCAL_RANK", 0))


def world_size() -> int:
    """Number of processes (1 before initialisation without a launcher)."""
    return dist.get_world_size() if is_initialized() else int(os.environ.get("WORLD_SIZE", 1))


def is_main_process() -> bool:
    """True on global rank 0."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank; a no-op without a process group."""
    if is_initialized():
        dist.barrier()


def device() -> torch.device:
    """This process's compute device: ``cuda:LOCAL_RANK`` or ``cpu``."""
    if torch.cuda.is_available() and default_backend() == "nccl":
        return torch.device("cuda", local_rank())
    return torch.device("cpu")


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
    if dist.is_initialized():
        dist.destroy_process_group()


def all_finite(*values: torch.Tensor) -> bool:
    """True when every value is finite on every rank (one MAX all-reduce when distributed),
    so that all ranks take the same skip decision."""
    bad = torch.tensor([0.0 if all(bool(torch.isfinite(v.detach()).all()) for v in values)
                        else 1.0], device=values[0].device if values else "cpu")
    if is_initialized() and world_size() > 1:
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    return bad.item() == 0
