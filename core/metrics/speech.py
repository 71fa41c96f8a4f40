"""Speech quality metrics from reference implementations: PESQ-wb (``pesq``), STOI
(``pystoi``) and DNSMOS (``speechmos``, whose ONNX models ship inside the package).

Every function takes one mono signal as a 1-D array-like ``(time,)`` (numpy or torch) at
``sample_rate``; signals are resampled to 16 kHz for PESQ-wb and DNSMOS (STOI resamples to
10 kHz itself). The packages are optional (``audio-core[eval]``): a missing one raises
:class:`~audio_core.errors.MissingPackageError` saying what to install.
"""

from __future__ import annotations

import numpy as np

from audio_core.audio.resample import resample
from audio_core.metrics.optional import require

SPEECH_RATE = 16000


def _mono(x, sample_rate: int, rate: int | None = None) -> np.ndarray:
    array = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"expected a mono signal (time,), got shape {array.shape}")
    if rate is not None and rate != sample_rate:
        array = resample(array, sample_rate, rate)
    return array


def pesq_wb(estimate, reference, sample_rate: int) -> float:
    """Wide-band PESQ (ITU-T P.862.2, MOS-LQO 1.04-4.64) of ``estimate`` against
    ``reference`` after resampling both to 16 kHz. NaN when PESQ finds no utterance."""
    pesq = require("pesq", "pesq", "PESQ")
    ref, est = _mono(reference, sample_rate, SPEECH_RATE), _mono(estimate, sample_rate,
                                                                 SPEECH_RATE)
    try:
        return float(pesq.pesq(SPEECH_RATE, ref, est, "wb"))
    except pesq.NoUtterancesError:
        return float("nan")


def stoi(estimate, reference, sample_rate: int, *, extended: bool = False) -> float:
    """Short-time objective intelligibility (0-1, higher is better; ``extended``: ESTOI)."""
    pystoi = require("pystoi", "pystoi", "STOI")
    return float(pystoi.stoi(_mono(reference, sample_rate), _mono(estimate, sample_rate),
                             sample_rate, extended=extended))


def dnsmos(estimate, sample_rate: int) -> dict[str, float]:
    """DNSMOS P.835 of one signal (no reference): ``dnsmos_ovrl``, ``dnsmos_sig``,
    ``dnsmos_bak`` (each 1-5) and ``dnsmos_p808``."""
    require("onnxruntime", "onnxruntime", "DNSMOS")
    speechmos = require("speechmos.dnsmos", "speechmos", "DNSMOS")
    audio = np.clip(_mono(estimate, sample_rate, SPEECH_RATE), -1.0, 1.0).astype(np.float32)
    scores = speechmos.run(audio, sr=SPEECH_RATE)
    return {"dnsmos_ovrl": float(scores["ovrl_mos"]), "dnsmos_sig": float(scores["sig_mos"]),
            "dnsmos_bak": float(scores["bak_mos"]), "dnsmos_p808": float(scores["p808_mos"])}
