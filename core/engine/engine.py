"""One DeepSpeed engine per optimizer role ("generator", "discriminator", ...).

An :class:`Engine` owns a module, its optimizer and LR schedule. Per micro-batch::

    loss = task_loss(engine(x))         # forward through the wrapped module
    engine.backward(loss)               # loss is the micro-batch mean; DeepSpeed divides
                                        # by gradient_accumulation_steps and averages ranks
    applied = engine.step()             # optimizer step only at the accumulation boundary

Every rank must make the same sequence of engine calls, or collectives hang. In a GAN
step, freeze the other role with ``other.requires_grad_(False)`` while this role steps,
and compute G's adversarial terms through D's raw ``engine.module``, not ``engine(...)``:
DeepSpeed hooks an engine's outputs, so a backward through them runs that engine's backward
bookkeeping (ZeRO-0 refuses it; ZeRO-1-3 rescale by its accumulation steps).

Optimizer and schedule: unless the DeepSpeed config has an ``optimizer`` block, the engine
builds ``torch.optim.AdamW`` (exact, and needs no JIT-built op on CPU); unless it has a
``scheduler`` block, the LR follows :func:`~audio_core.engine.ds_config.lr_lambda` through a
``torch.optim.lr_scheduler.LambdaLR`` that DeepSpeed steps once per applied optimizer step.
DeepSpeed's ``WarmupCosineLR``/``WarmupDecayLR`` work too but warm up from a ratio/log curve
that does not match ``train.optimizer.schedule``; ``LambdaLR`` states our schedule exactly and
is saved in DeepSpeed checkpoints like any scheduler.

What works on CPU (gloo, torch 2.13 CPU wheel, DeepSpeed 0.19.8; evidence in tests/engine):

* ZeRO 0, 1, 2 and 3 in fp32 with the torch AdamW client optimizer, 2 ranks: parameters
  after N steps equal a single-process PyTorch loop on the same global batch (max abs
  difference ~3e-8); gradient accumulation, clipping, warmup schedules and save/load too.
  Two engines (ZeRO-3 generator, ZeRO-1 discriminator, D frozen in G's step) match as well.
* bf16 under ZeRO 0/2/3: runs (the module is cast to bf16; cast inputs to ``engine.dtype``).
* fp16: DeepSpeed refuses it unless oneDNN reports fp16 support (not on common x86 CPUs);
  :func:`check_precision` turns that into a ``ConfigError`` naming ``train.precision``.
  With the accelerator's check bypassed (tests/tasks/test_task_precision.py), ZeRO-2 fp16
  runs on CPU: an overflow on one rank skips the step on both, halves the loss scale,
  and the scale is restored on resume.
* Every forward through the engine runs under ``torch.autocast`` of the engine's dtype
  (:mod:`audio_core.precision`); spectral maths opts out and runs in float32.
* On CUDA: NCCL (:mod:`~audio_core.distributed`), torch's fused AdamW
  (``train.fused_optimizer``), TF32/cuDNN settings (:mod:`~audio_core.engine.device`).
  Not run in this repository's CI, which has no GPU.
* DeepSpeed-built optimizers (an ``optimizer`` block): ``AdamW`` becomes ``FusedAdam`` and,
  with optimizer offload, ``DeepSpeedCPUAdam``; both JIT-compile a C++ op on first use
  (about 60 s each, cached in ``TORCH_EXTENSIONS_DIR``) and match torch AdamW (~6e-8).
  The ``zero3_offload`` preset (params + optimizer "offloaded" to CPU) works.
* A torch optimizer with ZeRO-Offload is refused by DeepSpeed, hence the automatic
  ``AdamW`` block when ``offload_optimizer`` is set.
* Launchers: ``deepspeed --num_gpus 2`` (the CPU accelerator treats it as 2 ranks),
  ``torchrun --nproc_per_node 2`` and plain ``python`` all work with gloo.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from audio_core import distributed
from audio_core.config.schema import OptimizerConfig, RunConfig
from audio_core.engine.device import accelerator_device, configure_backends
from audio_core.engine.ds_config import build_ds_config, lr_lambda
from audio_core.engine.zero3 import expose_record_outputs
from audio_core.errors import ConfigError
from audio_core.precision import autocast
from audio_core.storage.safe_load import check_not_universal, make_checkpoint_loading_safe

CLIENT_KEY = "audio_core"  # our client_state lives under this key in DeepSpeed checkpoints


def check_precision(ds_config: dict[str, Any], role: str) -> None:
    """Raise a :class:`ConfigError` when this accelerator cannot run the requested dtype."""
    from deepspeed.accelerator import get_accelerator

    accel: Any = get_accelerator()
    for name, supported in (("fp16", accel.is_fp16_supported), ("bf16", accel.is_bf16_supported)):
        if ds_config.get(name, {}).get("enabled") and not supported():
            raise ConfigError(f"engine '{role}': {name} is not supported on this "
                              f"{accel.device_name()} device; set train.precision to fp32"
                              f"{' or bf16' if name == 'fp16' else ''}", "train.precision")


class Engine:
    """A module, its optimizer and LR schedule under one DeepSpeed engine.

    ``ds_config`` is a complete DeepSpeed dict (see :func:`build_ds_config`); ``optimizer``
    and ``max_steps`` define the client AdamW and LR schedule when the dict has none
    (torch's fused AdamW on CUDA with ``fused_optimizer``). ``compile_backend``: compile
    the module's forward in place with ``torch.compile`` (e.g. ``"inductor"``).
    """

    def __init__(self, role: str, module: nn.Module, ds_config: dict[str, Any],
                 optimizer: OptimizerConfig | None = None, max_steps: int = 0, *,
                 compile_backend: str | None = None, fused_optimizer: bool = True):
        import deepspeed

        if compile_backend is not None and \
                int(ds_config.get("zero_optimization", {}).get("stage", 0)) == 3:
            raise ConfigError(f"engine '{role}': train.compile needs ZeRO stage 0-2 (ZeRO-3 "
                              f"gathers parameters in hooks torch.compile does not trace)",
                              "train.compile")
        distributed.init_distributed()
        check_precision(ds_config, role)
        self.role = role
        self.ds_config = ds_config
        #: whether the latest :meth:`step` applied the optimizer (False after fp16 overflow)
        self.last_step_applied = False
        opt = optimizer or OptimizerConfig()
        device = accelerator_device()
        if compile_backend is not None:
            module.compile(backend=compile_backend)  # in place: state_dict keys unchanged
        fused = fused_optimizer and device.type == "cuda" and "optimizer" not in ds_config
        if fused:  # torch's fused AdamW needs the parameters on the GPU when it is built
            module.to(device)
        params = [p for p in module.parameters() if p.requires_grad]
        client_opt = None
        if "optimizer" not in ds_config:
            client_opt = torch.optim.AdamW(params, lr=opt.lr, betas=(opt.betas[0], opt.betas[1]),
                                           eps=opt.eps, weight_decay=opt.weight_decay,
                                           fused=fused or None)
        schedule: Any = None
        if "scheduler" not in ds_config:
            factor = lr_lambda(opt, max_steps)

            def lambda_schedule(o: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
                return torch.optim.lr_scheduler.LambdaLR(o, factor)

            schedule = lambda_schedule

        # DeepSpeed's annotations (model_parameters: Module) disagree with its own docs.
        initialized: Any = deepspeed.initialize(
            model=module, optimizer=client_opt, lr_scheduler=schedule, config=ds_config,
            model_parameters=params,  # pyright: ignore[reportArgumentType]
            dist_init_required=False)
        self.ds: Any = initialized[0]
        self.optimizer, self.lr_scheduler = initialized[1], initialized[3]
        make_checkpoint_loading_safe(self.ds)  # engine states never unpickle code
        if self.zero_stage == 3:
            expose_record_outputs(self.module)
        self._broadcast_buffers()

    def _broadcast_buffers(self) -> None:
        """Start every rank from rank 0's buffers (EMA codebooks, batch-norm statistics, ...):
        DeepSpeed broadcasts parameters at initialisation, not buffers."""
        for buffer in self.module.buffers():
            distributed.broadcast_(buffer.data, src=0)

    @classmethod
    def from_config(cls, role: str, module: nn.Module, cfg: RunConfig,
                    optimizer: OptimizerConfig | None = None) -> Engine:
        """An engine for ``role`` configured from a run config (``train.*`` + ``deepspeed``)."""
        distributed.init_distributed()
        configure_backends(cfg.train)
        opt = optimizer or cfg.train.optimizer
        ds_config = build_ds_config(cfg, distributed.world_size(), role, opt)
        return cls(role, module, ds_config, opt, cfg.train.max_steps,
                   compile_backend=cfg.train.compile_backend if cfg.train.compile else None,
                   fused_optimizer=cfg.train.fused_optimizer)

    # ------------------------------------------------------------------ training calls
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The module's forward through DeepSpeed, under :meth:`autocast`."""
        with self.autocast():
            return self.ds(*args, **kwargs)

    forward = __call__

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate a scalar micro-batch loss (scaled by 1/accumulation inside)."""
        self.ds.backward(loss)

    def is_boundary(self) -> bool:
        """True when the next :meth:`step` applies the optimizer (last micro-batch)."""
        return bool(self.ds.is_gradient_accumulation_boundary())

    def step(self) -> bool:
        """Call after every :meth:`backward`. True if an optimizer step was applied
        (the accumulation boundary, and no fp16 overflow); the LR schedule then advances."""
        boundary, skipped = self.is_boundary(), self.ds.skipped_steps
        self.ds.step()
        self.last_step_applied = boundary and self.ds.skipped_steps == skipped
        return self.last_step_applied

    def zero_grad(self) -> None:
        """Drop accumulated gradients (DeepSpeed also clears them after each applied step)."""
        if self.zero_stage > 0 or self.ds.fp16_enabled() or self.ds.bfloat16_enabled():
            self.ds.optimizer.zero_grad()
        else:
            self.ds.zero_grad()

    def train(self, mode: bool = True) -> Engine:
        self.ds.train(mode)
        return self

    def eval(self) -> Engine:
        return self.train(False)

    def requires_grad_(self, flag: bool = True) -> Engine:
        """Freeze (``False``) or unfreeze every parameter of this role, e.g. D during G's step."""
        for p in self.module.parameters():
            p.requires_grad_(flag)
        return self

    # ------------------------------------------------------------------ state
    @property
    def module(self) -> nn.Module:
        """The wrapped ``nn.Module`` (under ZeRO-3 its parameters are partitioned)."""
        return self.ds.module

    @property
    def zero_stage(self) -> int:
        return int(self.ds.zero_optimization_stage())

    @property
    def dtype(self) -> torch.dtype:
        """Dtype the module computes in: cast floating inputs to it."""
        if self.ds.bfloat16_enabled():
            return torch.bfloat16
        return torch.float16 if self.ds.fp16_enabled() else torch.float32

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """``torch.autocast`` to :attr:`dtype` on this engine's device (nothing in fp32);
        use it around a call of the raw :attr:`module`."""
        return autocast(self.dtype, self.device)

    @property
    def loss_scale(self) -> float | None:
        """The current fp16 dynamic loss scale (``None`` unless fp16)."""
        if not self.ds.fp16_enabled():
            return None
        return float(self.ds.optimizer.loss_scale)

    @property
    def skipped_steps(self) -> int:
        """Optimizer steps skipped so far because of an fp16 gradient overflow."""
        return int(self.ds.skipped_steps)

    @property
    def device(self) -> torch.device:
        return self.ds.device

    @property
    def global_steps(self) -> int:
        """Optimizer steps taken (including fp16-overflow-skipped ones)."""
        return int(self.ds.global_steps)

    @property
    def lr(self) -> float:
        """Current learning rate of the first parameter group."""
        return float(self.ds.get_lr()[0])

    @property
    def grad_norm(self) -> float | None:
        """Global gradient norm before clipping at the last applied step (if DeepSpeed kept it)."""
        norm = self.ds.get_global_grad_norm()
        return None if norm is None else float(norm)

    @contextlib.contextmanager
    def gathered(self) -> Iterator[nn.Module]:
        """Context with the full parameters readable on every rank (ZeRO-3 gathers them,
        read-only; other stages hold them whole already). Yields the module."""
        if self.zero_stage == 3:
            import deepspeed

            with deepspeed.zero.GatheredParameters(list(self.module.parameters()),
                                                   modifier_rank=None):
                yield self.module
        else:
            yield self.module

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """Every parameter and buffer as a full CPU tensor on every rank (collective);
        floating-point ones in fp32, integer and bool buffers keep their dtype."""
        with self.gathered() as module:
            return {k: (v.detach().float() if v.is_floating_point() else v.detach()).cpu().clone()
                    for k, v in module.state_dict().items()}

    # ------------------------------------------------------------------ checkpoints
    def save(self, directory: str | Path, tag: str,
             client_state: dict[str, Any] | None = None) -> Path:
        """Save model, optimizer and scheduler state to ``directory/<role>/<tag>`` (collective)."""
        root = Path(directory) / self.role
        self.ds.save_checkpoint(str(root), tag=tag,
                                client_state={CLIENT_KEY: dict(client_state or {})})
        return root / tag

    def load(self, directory: str | Path, tag: str, *, load_optimizer: bool = True,
             load_scheduler: bool = True) -> dict[str, Any]:
        """Restore what :meth:`save` wrote; returns its ``client_state`` (collective).

        State files are loaded with ``torch.load(weights_only=True)`` and a small allow-list
        (:mod:`audio_core.storage.safe_load`): a file holding anything else is refused."""
        root = Path(directory) / self.role
        check_not_universal(self.ds, self.role)
        if not (root / tag).is_dir():
            raise FileNotFoundError(f"no checkpoint of engine '{self.role}' at {root / tag}")
        path, client_state = self.ds.load_checkpoint(
            str(root), tag=tag, load_optimizer_states=load_optimizer,
            load_lr_scheduler_states=load_scheduler)
        if path is None:
            raise FileNotFoundError(f"DeepSpeed could not load engine '{self.role}' from "
                                    f"{root / tag}")
        return dict((client_state or {}).get(CLIENT_KEY, {}))
