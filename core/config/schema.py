"""attrs schemas of a run config. OmegaConf validates YAML against these.

A component is referenced as ``{name: <plugin>.<component>, params: {...}}``; the field's
``kind`` metadata says which registry kind the name must belong to. ``choices``,
``minimum``/``maximum`` (numbers must also be finite), ``length`` and ``items`` (range or
choices of each list item) metadata are checked by
:func:`audio_core.config.loader.check_values`.
"""

from typing import Any

import attrs
from omegaconf import MISSING


def component(kind: str, default: Any = None) -> Any:
    """A field holding a :class:`ComponentConfig` (or ``None``) of registry kind ``kind``."""
    if callable(default):
        return attrs.field(factory=default, metadata={"kind": kind})
    return attrs.field(default=default, metadata={"kind": kind})


def components(kind: str) -> Any:
    """A field holding a list of component configs of registry kind ``kind``."""
    return attrs.field(factory=list, metadata={"kind": kind})


def choice(default: str, *choices: str) -> Any:
    return attrs.field(default=default, metadata={"choices": (default, *choices)})


def at_least(default: float, minimum: float) -> Any:
    return attrs.field(default=default, metadata={"minimum": minimum})


def between(default: float, minimum: float, maximum: float) -> Any:
    return attrs.field(default=default, metadata={"minimum": minimum, "maximum": maximum})


def tracker_names() -> tuple[str, ...]:
    """Tracking backends ``train.trackers`` may name (imported lazily)."""
    from audio_core.tracking.factory import BACKENDS

    return tuple(BACKENDS)


@attrs.define
class ComponentConfig:
    """A registered component: ``name`` (``plugin.component``) and constructor ``params``."""

    name: str = MISSING
    params: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class LossConfig(ComponentConfig):
    """A loss component with its weight in the total loss: a number or a schedule
    ``{start, end, warmup_steps, shape, delay_steps}`` (:mod:`audio_core.schedules`)."""

    weight: Any = 1.0


@attrs.define
class ConditionerConfig(ComponentConfig):
    """One of ``model.conditioners``: a conditioner and the batch key(s) it reads (``key``:
    a string, or a list for a conditioner reading several; default its ``input_key``)."""

    key: Any = None


@attrs.define
class RunSection:
    """Identity and bookkeeping of a run."""

    name: str = "run"
    output_dir: str = "runs"
    seed: int = 0
    description: str = ""


@attrs.define
class DataConfig:
    """What the model trains on. Datasets receive sample_rate/channels/segment_seconds/seed."""

    sample_rate: int = at_least(16000, 1)
    channels: int = at_least(1, 1)
    segment_seconds: float = at_least(1.0, 1e-3)
    batch_size: int = at_least(8, 1)
    num_workers: int = at_least(0, 0)
    train: ComponentConfig = component("dataset", lambda: ComponentConfig(name="core.synthetic"))
    val: ComponentConfig | None = component("dataset")


@attrs.define
class ModelConfig:
    """The model (``type``, built from its ``params`` and component slots) and the training
    parts (``discriminators``, ``losses``). Which slots a run uses is declared by the model
    class and the task (:func:`audio_core.models.build.check_slots`)."""

    type: str | None = attrs.field(default=None, metadata={"kind": "model"})
    params: dict[str, Any] = attrs.field(factory=dict)
    #: an export folder (e.g. written by ``audio-core import``) or run folder whose weights
    #: a training run starts from instead of a fresh initialisation (fine-tuning)
    init: str | None = None
    encoder: ComponentConfig | None = component("encoder")
    quantizer: ComponentConfig | None = component("quantizer")
    decoder: ComponentConfig | None = component("decoder")
    vocoder: ComponentConfig | None = component("vocoder")
    denoiser: ComponentConfig | None = component("denoiser")
    conditioner: ComponentConfig | None = component("conditioner")
    #: several conditioners by name, their tokens concatenated (``conditioner`` is the
    #: one-entry shorthand): ``{NAME: {name, params, key}}``
    conditioners: dict[str, ConditionerConfig] = attrs.field(
        factory=dict, metadata={"kind": "conditioner"})
    objective: ComponentConfig | None = component("objective")
    sampler: ComponentConfig | None = component("sampler")
    discriminators: list[ComponentConfig] = components("discriminator")
    losses: list[LossConfig] = components("loss")


#: ``model.*`` fields that hold one component (a model's or task's slots).
COMPONENT_SLOTS = ("encoder", "quantizer", "decoder", "vocoder", "denoiser", "conditioner",
                   "conditioners", "objective", "sampler", "discriminators", "losses")


@attrs.define
class OptimizerConfig:
    """AdamW settings for one engine."""

    lr: float = at_least(3e-4, 0.0)
    #: AdamW's (beta1, beta2), each in [0, 1)
    betas: list[float] = attrs.field(factory=lambda: [0.9, 0.99], metadata={
        "length": 2, "items": {"minimum": 0.0, "below": 1.0}})
    eps: float = at_least(1e-8, 0.0)
    weight_decay: float = at_least(0.0, 0.0)
    warmup_steps: int = at_least(0, 0)
    schedule: str = choice("constant", "cosine", "linear")
    min_lr_ratio: float = between(0.0, 0.0, 1.0)


@attrs.define
class TrainConfig:
    """The training loop: length, precision, optimisation and bookkeeping cadence."""

    max_steps: int = at_least(1000, 0)
    #: parameters and autocast dtype; fp16 uses dynamic loss scaling (audio_core.precision)
    precision: str = choice("fp32", "bf16", "fp16")
    #: torch.compile each engine's module forward (ZeRO stage 0-2)
    compile: bool = False
    #: the torch.compile backend (``inductor``; ``aot_eager``/``eager`` to debug)
    compile_backend: str = "inductor"
    #: torch's fused AdamW on CUDA (ignored on CPU and with a DeepSpeed optimizer block)
    fused_optimizer: bool = True
    #: CUDA: TF32 tensor cores for float32 matmuls and convolutions
    tf32: bool = True
    #: CUDA: cuDNN autotuning of convolution algorithms
    cudnn_benchmark: bool = True
    grad_accum: int = at_least(1, 1)
    grad_clip: float = at_least(0.0, 0.0)
    optimizer: OptimizerConfig = attrs.field(factory=OptimizerConfig)
    log_every: int = at_least(10, 1)
    val_every: int = at_least(500, 0)
    checkpoint_every: int = at_least(500, 0)
    keep_checkpoints: int = at_least(3, 1)
    ema_decay: float = attrs.field(default=0.0, metadata={"minimum": 0.0, "below": 1.0})
    nan_tolerance: int = at_least(10, 1)
    val_batches: int = at_least(4, 0)
    num_samples: int = at_least(2, 0)
    #: generative tasks: the embedding validation FAD and class accuracy are computed on
    #: (``None``: ``core.logmel``)
    val_embedding: ComponentConfig | None = component("embedding")
    #: generative tasks: sampler steps of each validation clip
    val_steps: int = at_least(10, 1)
    #: keep the checkpoint with the best value of this logged metric (``val/fad``,
    #: ``val/loss``, ...) in ``RUN/checkpoints/best``; ``None``: no best checkpoint
    best_metric: str | None = None
    #: ``min`` or ``max`` is better; ``auto``: ``max`` for accuracy/SI-SDR/SNR-like names
    best_mode: str = choice("auto", "min", "max")
    #: write the examples of every micro-batch (path, crop offset) to RUN/examples/
    log_examples: bool = False
    trackers: list[str] = attrs.field(factory=lambda: ["jsonl", "tensorboard", "mlflow"],
                                      metadata={"items": {"choices": tracker_names}})
    #: start the discriminators from those saved with ``model.init`` (an export written with
    #: ``--with-discriminators`` or a run folder); false: fresh discriminators
    init_discriminators: bool = False
    #: MLflow registered-model name: ``audio-core export`` registers each export as a version
    register_model: str | None = None


@attrs.define
class RunConfig:
    """A whole run: the file ``audio-core train CONFIG`` reads."""

    run: RunSection = attrs.field(factory=RunSection)
    data: DataConfig = attrs.field(factory=DataConfig)
    model: ModelConfig = attrs.field(factory=ModelConfig)
    task: ComponentConfig | None = component("task")
    train: TrainConfig = attrs.field(factory=TrainConfig)
    deepspeed: dict[str, Any] = attrs.field(factory=dict)


def walk(obj: Any, path: str = ""):
    """Yield ``(path, attrs field, value)`` for every field in a config tree."""
    for field in attrs.fields(type(obj)):
        value = getattr(obj, field.name)
        where = f"{path}.{field.name}" if path else field.name
        yield where, field, value
        if attrs.has(type(value)):
            yield from walk(value, where)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if attrs.has(type(item)):
                    yield from walk(item, f"{where}[{i}]")
        elif isinstance(value, dict):
            for name, item in value.items():
                if attrs.has(type(item)):
                    yield from walk(item, f"{where}.{name}")


def component_refs(cfg: RunConfig):
    """Yield ``(path, kind, ComponentConfig)`` for every component the config names."""
    for where, field, value in walk(cfg):
        kind = field.metadata.get("kind")
        if kind is None or value is None:
            continue
        if isinstance(value, dict):  # NAME -> component (model.conditioners)
            for name, item in value.items():
                yield f"{where}.{name}", kind, item
            continue
        items = enumerate(value) if isinstance(value, list) else [(None, value)]
        for i, item in items:
            if isinstance(item, ComponentConfig):
                yield (where if i is None else f"{where}[{i}]"), kind, item
