"""Precision helpers, fp16 config defaults, device switches (single process, no engine).

The engine-level bf16/fp16/compile runs are in tests/tasks/test_task_precision.py."""

from __future__ import annotations

import pytest
import torch

from audio_core.config import load_config
from audio_core.engine.device import configure_backends
from audio_core.engine.ds_config import build_ds_config
from audio_core.errors import ConfigError
from audio_core.precision import FP16_DEFAULTS, autocast, float32_region, precision_dtype


def test_float32_region_turns_autocast_off_and_casts_inputs():
    seen = {}

    @float32_region
    def inner(x, *, y, n):
        seen.update(x=x.dtype, y=y.dtype, n=n.dtype, on=torch.is_autocast_enabled("cpu"),
                    mm=(x @ x.T).dtype)
        return x

    with torch.autocast("cpu", dtype=torch.bfloat16):
        inner(torch.ones(2, 2, dtype=torch.bfloat16), y=torch.ones(1, dtype=torch.float16),
              n=torch.ones(1, dtype=torch.int64))
        assert torch.is_autocast_enabled("cpu")  # restored after the region
    assert seen == {"x": torch.float32, "y": torch.float32, "n": torch.int64, "on": False,
                    "mm": torch.float32}


def test_autocast_helper():
    with autocast(torch.bfloat16, "cpu"):
        assert torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast(torch.float32, "cpu"):
        assert not torch.is_autocast_enabled("cpu")
    assert precision_dtype("fp16") == torch.float16
    with pytest.raises(ValueError, match="fp32, bf16, fp16"):
        precision_dtype("fp8")


@pytest.mark.parametrize("name", ["core.mel", "core.mrstft"])
def test_spectral_losses_are_float32_under_bf16_autocast(name, monkeypatch):
    """bf16 inputs inside bf16 autocast: the STFT sees float32 with autocast off, and the
    loss equals the float32 loss of the same (bf16-rounded) signals."""
    import audio_core.audio.dsp.modules as dsp_modules
    import audio_core.components.spectral_losses as spectral_losses
    from audio_core.config.build import build_component
    from audio_core.config.schema import ComponentConfig
    from audio_core.plugins import get_registry

    loss = build_component(ComponentConfig(name=name), "loss", "model.losses[0]",
                           registry=get_registry(), context={"sample_rate": 8000})
    seen = []
    for module in (spectral_losses, dsp_modules):
        original = module.stft

        def recording(x, *args, _original=original, **kwargs):
            seen.append((x.dtype, torch.is_autocast_enabled("cpu")))
            return _original(x, *args, **kwargs)

        monkeypatch.setattr(module, "stft", recording)
    torch.manual_seed(0)
    est, ref = torch.randn(2, 1, 4096).bfloat16(), torch.randn(2, 1, 4096).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss(est, ref).value
    exact = loss(est.float(), ref.float()).value
    assert seen and all(s == (torch.float32, False) for s in seen)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, exact)


def _cfg(precision: str, **deepspeed):
    return load_config({"train": {"precision": precision}, "deepspeed": deepspeed},
                       check_components=False)


def test_fp16_gets_dynamic_loss_scaling_defaults_that_the_user_can_override():
    ds = build_ds_config(_cfg("fp16"), 1)
    assert ds["fp16"] == {"enabled": True, **FP16_DEFAULTS}
    ds = build_ds_config(_cfg("fp16", fp16={"initial_scale_power": 8, "hysteresis": 2}), 1)
    assert ds["fp16"]["initial_scale_power"] == 8 and ds["fp16"]["hysteresis"] == 2
    assert "loss_scale_window" not in build_ds_config(_cfg("bf16"), 1).get("fp16", {})


def test_compile_refuses_zero3_before_any_setup():
    from audio_core.engine.engine import Engine

    with pytest.raises(ConfigError, match=r"train\.compile needs ZeRO stage 0-2"):
        Engine("generator", torch.nn.Linear(2, 2), {"zero_optimization": {"stage": 3}},
               compile_backend="inductor")


def test_configure_backends_applies_the_train_switches_on_cuda_only():
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision())
    try:
        train = _cfg("fp32").train
        assert configure_backends(train, "cpu") == {"device": "cpu", "tf32": False,
                                                    "cudnn_benchmark": False}
        assert torch.get_float32_matmul_precision() == saved[3]  # CPU: untouched
        # the flags are plain switches: setting them needs no GPU
        assert configure_backends(train, "cuda:0") == {"device": "cuda:0", "tf32": True,
                                                       "cudnn_benchmark": True}
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert torch.get_float32_matmul_precision() == "high"
        train.tf32, train.cudnn_benchmark = False, False
        configure_backends(train, "cuda:0")
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.benchmark
        assert torch.get_float32_matmul_precision() == "highest"
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, \
            torch.backends.cudnn.benchmark = saved[:3]
        torch.set_float32_matmul_precision(saved[3])


class _Stop(Exception):
    pass


@pytest.mark.parametrize(("device", "flag", "fused"), [
    ("cuda", True, True), ("cuda", False, None), ("cpu", True, None)])
def test_fused_adamw_is_asked_for_on_cuda_only(monkeypatch, device, flag, fused):
    """The wiring of ``train.fused_optimizer`` (the GPU itself is not needed: the optimizer
    is intercepted before DeepSpeed starts)."""
    import audio_core.engine.engine as engine_module

    seen = {}

    class Recorder(torch.nn.Linear):
        def to(self, *args, **kwargs):
            seen["moved_to"] = args
            return self

    def fake_adamw(params, **kwargs):
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr(engine_module.distributed, "init_distributed", lambda: None)
    monkeypatch.setattr(engine_module, "check_precision", lambda *a: None)
    monkeypatch.setattr(engine_module, "accelerator_device", lambda: torch.device(device))
    monkeypatch.setattr(engine_module.torch.optim, "AdamW", fake_adamw)
    with pytest.raises(_Stop):
        engine_module.Engine("generator", Recorder(2, 2), {}, fused_optimizer=flag)
    assert seen["fused"] is fused
    assert ("moved_to" in seen) == bool(fused)
