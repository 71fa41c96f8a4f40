"""ONNX export of codecs and autoencoders (``audio-core export --format onnx``).

Writes two graphs and a description::

    OUT/encoder.onnx   waveform float32 (batch, channels, time) -> codes int64
                       (batch, num_codebooks, frames) for a codec (every codebook), else
                       latent float32 (batch, latent_dim, frames)
    OUT/decoder.onnx   codes int64 (batch, n, frames), any 1 <= n <= num_codebooks (the first
                       n rows: lower bitrates), or the latent -> waveform (batch, channels,
                       frames * hop_length)
    OUT/onnx.json      sample rate, channels, hop, codebooks, input/output names, opset, and
                       the max abs difference to PyTorch measured with onnxruntime at export

Batch and length are dynamic axes. Weight norm is folded into plain weights before export
(a parametrization is not exportable), on a copy: the model passed in is unchanged. The
graphs are offline (whole-signal) graphs; streaming state is not exposed.

A model with its own graphs (:class:`~audio_core.contracts.onnx.OnnxExportable`: a tokenizer
decoding codes with its own maths, a Griffin-Lim vocoder that takes its initial phases, an
unrolled diffusion sampler that takes its noise) gives them with ``onnx_graphs()``; their
extra decoder inputs are listed in ``onnx.json`` (``decoder.inputs``) and fed to the check.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from audio_core.contracts.onnx import OnnxExportable, OnnxGraphs
from audio_core.errors import AudioCoreError

OPSET = 17
ONNX_INFO = "onnx.json"


class OnnxExportError(AudioCoreError):
    """The model (or this machine) cannot produce the ONNX graphs."""


def fold_weight_norm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parametrized weights (weight norm) are plain tensors.

    Not ``remove_parametrizations``: it deletes the property from the parametrized class,
    which a deep copy shares with the original model; each copied module gets its
    unparametrized class back instead."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if parametrize.is_parametrized(module):
            with torch.no_grad():
                names = list(cast(nn.ModuleDict, module.parametrizations))
                values = {name: getattr(module, name).clone() for name in names}
            module.__class__ = module.__class__.__bases__[0]  # the class before parametrize
            del module._modules["parametrizations"]
            for name, value in values.items():
                module.register_parameter(name, nn.Parameter(value))
    return model


class CodeLookup(nn.Module):
    """Residual-VQ decoding as one gather: codes ``(batch, n, frames)`` (any ``n <= N``) ->
    latent ``(batch, dim, frames)``, the sum of each row's table row (the quantizer's
    ``code_tables()``: what each code decodes to). Row ``i``'s codes
    index table rows ``i * K .. i * K + K - 1`` of the stacked ``(N * K, dim)`` table."""

    table: Tensor  # buffer (N * K, dim)

    def __init__(self, tables: list[Tensor]) -> None:
        super().__init__()
        self.size = tables[0].shape[0]
        self.register_buffer("table", torch.cat(tables).float())

    def forward(self, codes: Tensor) -> Tensor:
        rows = torch.arange(codes.shape[1], device=codes.device) * self.size
        vectors = nn.functional.embedding(codes + rows[None, :, None], self.table)
        return vectors.sum(dim=1).transpose(1, 2)


class EncoderGraph(nn.Module):
    """waveform -> codes (a codec, every codebook) or the latent."""

    def __init__(self, model: Any, codec: bool) -> None:
        super().__init__()
        self.model, self.codec = model, codec

    def forward(self, waveform: Tensor) -> Tensor:
        if self.codec:
            return self.model.encode_codes(waveform)
        return self.model.encode(waveform)


class DecoderGraph(nn.Module):
    """codes (through :class:`CodeLookup`) or latent -> waveform."""

    def __init__(self, model: Any, lookup: CodeLookup | None) -> None:
        super().__init__()
        self.model, self.lookup = model, lookup

    def forward(self, x: Tensor) -> Tensor:
        latent = self.lookup(x) if self.lookup is not None else x
        return self.model.decoder(latent)


def _graphs(model: Any) -> OnnxGraphs:
    """The model's own graphs (:class:`~audio_core.contracts.onnx.OnnxExportable`), else
    :func:`default_graphs`."""
    return model.onnx_graphs() if isinstance(model, OnnxExportable) else default_graphs(model)


def default_graphs(model: Any) -> OnnxGraphs:
    """Encoder ``encode_codes``/``encode``; decoder ``model.decoder`` (which must output the
    waveform) after a code-table lookup for a codec."""
    from audio_core.contracts.models import Autoencoder, is_codec

    if not isinstance(model, Autoencoder) or not hasattr(model, "decoder"):
        raise OnnxExportError(f"ONNX export needs a codec or autoencoder with a decoder "
                              f"module; {type(model).__name__} is not one")
    codec = is_codec(model)
    lookup = None
    if codec:
        tables = getattr(model.quantizer, "code_tables", None)  # an optional capability
        if tables is None:
            raise OnnxExportError(f"ONNX export of codes needs a quantizer whose codes decode "
                                  f"to a sum of table rows (a code_tables() method, as "
                                  f"core.rvq and soundstream.factorized_rvq have); "
                                  f"{type(model.quantizer).__name__} has none")
        with torch.no_grad():
            lookup = CodeLookup(tables())
        info = {"num_codebooks": len(tables()), "codebook_size": lookup.size}
    else:
        info = {"latent_dim": model.latent_dim}
    middle = "codes" if codec else "latent"
    axes = {0: "batch", 1: "codebooks", 2: "frames"} if codec else {0: "batch", 2: "frames"}
    return OnnxGraphs(EncoderGraph(model, codec), DecoderGraph(model, lookup), middle, axes,
                      info=info)


PhaseInput = tuple[dict[str, dict[int, str]], dict[str, Any],
                   Callable[[Tensor, torch.Generator], dict[str, Tensor]] | None]


def griffin_lim_phase_input(vocoder: Any, middle: str, frames: str,
                            shape: Callable[[Tensor], tuple[int, ...]]) -> PhaseInput:
    """A decoder graph's ``phase`` input when ``vocoder`` is a Griffin-Lim vocoder (its
    initial phases, which PyTorch draws itself): ``(extra, decoder info, make_extra)`` for
    :class:`~audio_core.contracts.onnx.OnnxGraphs`; ``({}, {}, None)`` for other vocoders.
    ``middle`` names the graph's first input (``codes``, ``latent``), ``frames`` says how many
    mel frames the phase has, ``shape(middle)`` is the phase shape ``(batch, n_fft // 2 + 1,
    mel frames)`` PyTorch draws."""
    from audio_core.components.vocoders import GriffinLimVocoder

    if not isinstance(vocoder, GriffinLimVocoder):
        return {}, {}, None
    info = {"inputs": [middle, "phase"], "vocoder": "griffin_lim",
            "griffin_lim_iterations": vocoder.n_iter,
            "phase": f"uniform in [0, 1) (batch, {vocoder.n_fft // 2 + 1}, {frames}); PyTorch "
                     f"draws it with torch.rand from a CPU generator seeded {vocoder.seed}; "
                     f"longer phases are cut"}

    def make_extra(x: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        return {"phase": torch.rand(shape(x), generator=generator)}

    return {"phase": {0: "batch", 2: "mel_frames"}}, info, make_extra


def export_onnx(model: Any, out: str | Path, *, seconds: float = 1.0,
                check: bool = True) -> dict[str, Any]:
    """Write ``encoder.onnx``, ``decoder.onnx`` and ``onnx.json`` for ``model`` into
    ``out``; traced on ``seconds`` of noise. With ``check`` (and onnxruntime installed) both
    graphs run on a signal of another length and ``onnx.json`` records the max abs
    difference to PyTorch (``max_abs_diff``). Returns the ``onnx.json`` content."""
    out = Path(out)
    model = cast(Any, fold_weight_norm(model.float().cpu().eval()))
    graphs = _graphs(model)
    graphs.encoder.eval()
    graphs.decoder.eval()
    info: dict[str, Any] = {"sample_rate": model.sample_rate, "channels": model.channels,
                            "hop_length": model.hop_length,
                            "encoder": {"input": "waveform", "output": graphs.middle},
                            "decoder": {"input": graphs.middle, "output": "waveform"}}
    if graphs.extra:
        info["decoder"]["inputs"] = [graphs.middle, *graphs.extra]
    for key, value in graphs.info.items():
        info[key] = {**info[key], **value} if isinstance(info.get(key), dict) else value
    example = torch.randn(1, model.channels, int(seconds * model.sample_rate),
                          generator=torch.Generator().manual_seed(0)) * 0.1
    out.mkdir(parents=True, exist_ok=True)
    waveform_axes = {0: "batch", 2: "length"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on shape checks turned constants
        middle = graphs.encoder(example)
        extra = _extra(graphs, middle, 0)
        for graph, args, names, axes, name in (
                (graphs.encoder, (example,), ["waveform", graphs.middle],
                 [waveform_axes, graphs.middle_axes], "encoder"),
                (graphs.decoder, (middle, *extra.values()),
                 [graphs.middle, *extra, "waveform"],
                 [graphs.middle_axes, *graphs.extra.values(), waveform_axes], "decoder")):
            try:
                torch.onnx.export(graph, args, str(out / f"{name}.onnx"),
                                  input_names=names[:-1], output_names=names[-1:],
                                  opset_version=OPSET, dynamo=False,
                                  dynamic_axes=dict(zip(names, axes, strict=True)))
            except Exception as exc:  # an op without an ONNX form, a missing package
                raise OnnxExportError(f"ONNX export of the {name} of "
                                      f"{type(model).__name__} failed: "
                                      f"{type(exc).__name__}: {exc}") from exc
    info["opset"] = OPSET
    if check:
        info["max_abs_diff"] = check_onnx(graphs, out, model.channels,
                                          int(0.37 * seconds * model.sample_rate) + 7)
    (out / ONNX_INFO).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return info


def _extra(graphs: OnnxGraphs, middle: Tensor, seed: int) -> dict[str, Tensor]:
    """Values of the decoder's extra inputs for ``middle`` (none for the default graphs)."""
    if graphs.make_extra is None:
        return {}
    return graphs.make_extra(middle, torch.Generator().manual_seed(seed))


def check_onnx(graphs: OnnxGraphs, out: Path, channels: int,
               length: int) -> dict[str, float] | None:
    """Max abs difference of the ONNX graphs in ``out`` (onnxruntime) to PyTorch on noise
    of ``length`` samples (batch 2): ``{"encoder", "decoder"}`` (codes: count of differing
    codes as ``encoder_codes_differ``); ``None`` without onnxruntime. The decoder graph runs
    on PyTorch's encoder output (and the same extra inputs)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    x = torch.randn(2, channels, length, generator=torch.Generator().manual_seed(1)) * 0.1
    with torch.no_grad():
        middle = graphs.encoder(x)
        extra = _extra(graphs, middle, 1)
        audio = graphs.decoder(middle, *extra.values())
    run = {name: ort.InferenceSession(str(out / f"{name}.onnx"),
                                      providers=["CPUExecutionProvider"])
           for name in ("encoder", "decoder")}
    got_middle = torch.from_numpy(run["encoder"].run(None, {"waveform": x.numpy()})[0])
    feeds = {graphs.middle: middle.numpy(), **{k: v.numpy() for k, v in extra.items()}}
    got_audio = torch.from_numpy(run["decoder"].run(None, feeds)[0])
    for name, got, want in (("encoder", got_middle, middle), ("decoder", got_audio, audio)):
        if got.shape != want.shape:  # a length baked into the graph when it was traced
            raise OnnxExportError(
                f"{name}.onnx is not length-dynamic: on {length} samples it gives shape "
                f"{tuple(got.shape)}, PyTorch {tuple(want.shape)} (the {name} computes a "
                f"size from the input length in Python, which tracing turned into a "
                f"constant); this model cannot be exported to ONNX yet")
    diffs = {"decoder": float((got_audio - audio).abs().max())}
    if middle.dtype == torch.int64:
        diffs["encoder_codes_differ"] = float((got_middle != middle).sum())
    else:
        diffs["encoder"] = float((got_middle - middle).abs().max())
    return diffs
