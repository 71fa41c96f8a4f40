"""MLflow backend, offline by default: a local file store under ``<run_dir>/mlruns``."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from audio_core.audio.io import save_audio
from audio_core.tracking.base import ImageLike, Tracker, TrackingError, to_scalar
from audio_core.tracking.media import safe_name, save_png, step_folder
from audio_core.tracking.params import flatten_params

log = logging.getLogger(__name__)

_MAX_PARAM_VALUE = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
_PARAMS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000


def _import_mlflow(tracking_uri: str):
    """Import mlflow with telemetry off and, for ``file:`` URIs, the file store allowed.

    mlflow >= 3.x phones home for telemetry unless ``MLFLOW_DISABLE_TELEMETRY`` is set, and
    recent 3.x refuse file stores unless ``MLFLOW_ALLOW_FILE_STORE=true``. Both are set with
    ``setdefault`` (process-wide), so an explicit user choice wins.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if tracking_uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    already_imported = "mlflow" in sys.modules
    try:
        import mlflow.telemetry
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
    except ImportError as err:
        raise TrackingError("tracking backend 'mlflow' needs the mlflow package "
                            f"(pip install mlflow): {err}") from err
    if already_imported and os.environ["MLFLOW_DISABLE_TELEMETRY"].lower() in ("true", "1"):
        mlflow.telemetry.set_telemetry_client()  # drop a client created before we set the env
    return MlflowClient, Metric, Param


class MlflowTracker(Tracker):
    """Logs params, metrics, audio/images (as artifacts) and checkpoints to MLflow.

    The tracking URI is ``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else the local file
    store ``file:<run_dir>/mlruns`` (no server, no network). The run id is remembered in
    ``<run_dir>/mlflow_run.json`` so a resumed training run continues the same MLflow run.
    Samples go to artifacts ``samples/step_XXXXXXX/NAME.wav``, images to ``images/...``.
    Params already logged with another value (mlflow forbids changing them) are skipped with
    a warning.
    """

    name = "mlflow"

    def __init__(self, run_dir: str | os.PathLike, *, tracking_uri: str | None = None,
                 experiment_name: str = "audio-core", run_name: str | None = None,
                 tags: Mapping[str, str] | None = None):
        self.run_dir = Path(run_dir)
        self.tracking_uri = (tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
                             or (self.run_dir / "mlruns").resolve().as_uri())
        client_cls, self._metric, self._param = _import_mlflow(self.tracking_uri)
        try:
            self._client = client_cls(tracking_uri=self.tracking_uri)
            self.run_id = self._resume_or_create(experiment_name, run_name, dict(tags or {}))
        except Exception as err:
            raise TrackingError(f"tracking backend 'mlflow' could not start a run at "
                                f"{self.tracking_uri}: {err}") from err
        self._closed = False

    def _resume_or_create(self, experiment_name: str, run_name: str | None,
                          tags: dict[str, str]) -> str:
        state_file = self.run_dir / "mlflow_run.json"
        if state_file.exists():
            state = json.loads(state_file.read_text(encoding="utf-8"))
            if state.get("tracking_uri") == self.tracking_uri:
                try:
                    self._client.update_run(state["run_id"], status="RUNNING")
                    return state["run_id"]
                except Exception as err:  # deleted or foreign run: start a new one
                    log.warning("mlflow: cannot resume run %s (%s); starting a new run",
                                state.get("run_id"), err)
        experiment = self._client.get_experiment_by_name(experiment_name)
        experiment_id = (experiment.experiment_id if experiment is not None
                         else self._client.create_experiment(experiment_name))
        run = self._client.create_run(experiment_id, run_name=run_name or self.run_dir.name,
                                      tags=tags)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps({"tracking_uri": self.tracking_uri,
                                          "run_id": run.info.run_id}), encoding="utf-8")
        return run.info.run_id

    def _check_open(self) -> None:
        if self._closed:
            raise TrackingError("tracking backend 'mlflow' is closed")

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self._check_open()
        now = int(time.time() * 1000)
        items = [self._metric(safe_name(k), to_scalar(v), now, int(step))
                 for k, v in metrics.items()]
        for i in range(0, len(items), _METRICS_PER_BATCH):
            self._client.log_batch(self.run_id, metrics=items[i : i + _METRICS_PER_BATCH])

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._check_open()
        existing = self._client.get_run(self.run_id).data.params
        new, changed = [], []
        for key, value in flatten_params(params).items():
            key, text = safe_name(key)[:250], str(value)[:_MAX_PARAM_VALUE]
            if key not in existing:
                new.append(self._param(key, text))
            elif existing[key] != text:
                changed.append(key)
        if changed:
            log.warning("mlflow: params cannot change within a run; kept the old values of %s",
                        ", ".join(sorted(changed)))
        for i in range(0, len(new), _PARAMS_PER_BATCH):
            self._client.log_batch(self.run_id, params=new[i : i + _PARAMS_PER_BATCH])

    def _log_file(self, write, name: str, suffix: str, folder: str) -> None:
        self._check_open()
        rel = Path(f"{safe_name(name)}{suffix}")
        with tempfile.TemporaryDirectory() as tmp:
            path = write(Path(tmp) / rel.name)
            target = f"{folder}/{rel.parent.as_posix()}".removesuffix("/.")
            self._client.log_artifact(self.run_id, str(path), target)

    def log_audio(self, name: str, audio: Tensor, sample_rate: int, step: int) -> None:
        self._log_file(lambda p: save_audio(p, audio.detach().float().clamp(-1, 1), sample_rate),
                       name, ".wav", f"samples/{step_folder(step)}")

    def log_image(self, name: str, image: ImageLike, step: int) -> None:
        self._log_file(lambda p: save_png(image, p), name, ".png", f"images/{step_folder(step)}")

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        """Copy a file, or a directory (e.g. a checkpoint, kept under its own name), into the
        run's artifacts."""
        self._check_open()
        path = Path(path)
        if path.is_dir():
            target = artifact_path or path.name
            self._client.log_artifacts(self.run_id, str(path), target)
        elif path.is_file():
            self._client.log_artifact(self.run_id, str(path), artifact_path)
        else:
            raise FileNotFoundError(f"artifact not found: {path}")

    def close(self, *, failed: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        self._client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")


# -- model registry -------------------------------------------------------------------------
RUN_STATE_FILE = "mlflow_run.json"
#: Metric-name prefixes a registered version records by default (the run's latest values).
REGISTERED_METRICS = ("val/", "loss/")


def _tracking_uri_context(uri: str) -> Any:
    """Make ``uri`` mlflow's process-wide tracking URI inside the block: the registry's
    file store otherwise resolves a default (``sqlite:///mlflow.db`` in the working
    directory) while creating a version."""
    import contextlib

    try:
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri
    except ImportError:  # pragma: no cover - older/newer mlflow without the helper
        return contextlib.nullcontext()
    return _use_tracking_uri(uri)


def register_export(run_dir: str | os.PathLike, export_dir: str | os.PathLike, name: str, *,
                    tracking_uri: str | None = None,
                    metric_prefixes: tuple[str, ...] = REGISTERED_METRICS) -> dict[str, Any]:
    """Register ``export_dir`` (an ``audio-core export`` folder) as a new version of the
    registered model ``name`` in the MLflow store of the training run in ``run_dir``.

    The store is ``tracking_uri``, else the one the run's MLflow tracker used (recorded in
    ``run_dir/mlflow_run.json``), else ``$MLFLOW_TRACKING_URI``, else the local file store
    ``file:<run_dir>/mlruns`` (offline; the registry lives beside the runs, in
    ``mlruns/models``). The export's files are logged to the run's artifacts under
    ``export/step_<step>`` and the version points there, linked to the run, with the run's
    latest metrics whose names start with ``metric_prefixes`` as tags ``metric.<name>``
    (and ``step``, ``model_type``, ``weights`` from ``export.json``). Without a recorded
    run (trained without the mlflow tracker) a run named after the folder is created.
    Returns ``{name, version, source, run_id, tracking_uri, metrics}``.
    """
    run_dir, export_dir = Path(run_dir), Path(export_dir)
    if not (export_dir / "model.safetensors").is_file():
        raise TrackingError(f"mlflow registry: {export_dir} is not an export folder (no "
                            f"model.safetensors); run `audio-core export` first")
    state_file = run_dir / RUN_STATE_FILE
    state = json.loads(state_file.read_text(encoding="utf-8")) if state_file.is_file() else {}
    uri = (tracking_uri or state.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
           or (run_dir / "mlruns").resolve().as_uri())
    client_cls, _, _ = _import_mlflow(uri)
    info_file = export_dir / "export.json"
    info = json.loads(info_file.read_text(encoding="utf-8")) if info_file.is_file() else {}
    try:
        with _tracking_uri_context(uri):
            version, run_id, source, metrics = _register(client_cls(tracking_uri=uri,
                                                                    registry_uri=uri),
                                                         state, uri, run_dir, export_dir, name,
                                                         info, metric_prefixes)
    except TrackingError:
        raise
    except Exception as err:
        raise TrackingError(f"mlflow registry: could not register {export_dir} as model "
                            f"'{name}' at {uri}: {err}") from err
    return {"name": name, "version": int(version.version), "source": source,
            "run_id": run_id, "tracking_uri": uri, "metrics": metrics}


def _register(client: Any, state: dict[str, Any], uri: str, run_dir: Path, export_dir: Path,
              name: str, info: dict[str, Any], metric_prefixes: tuple[str, ...]
              ) -> tuple[Any, str, str, dict[str, float]]:
    """The registry calls of :func:`register_export`: ``(version, run_id, source,
    metrics)``."""
    run_id = state.get("run_id") if state.get("tracking_uri") == uri else None
    if run_id is None:
        experiment = client.get_experiment_by_name("audio-core")
        experiment_id = (experiment.experiment_id if experiment is not None
                         else client.create_experiment("audio-core"))
        run_id = client.create_run(experiment_id, run_name=run_dir.name).info.run_id
        client.set_terminated(run_id)
    run = client.get_run(run_id)
    metrics = {k: v for k, v in sorted(run.data.metrics.items())
               if k.startswith(tuple(metric_prefixes))}
    folder = f"export/step_{int(info.get('step', 0)):07d}"
    client.log_artifacts(run_id, str(export_dir), folder)
    source = f"{run.info.artifact_uri.rstrip('/')}/{folder}"
    try:
        client.get_registered_model(name)
    except Exception:  # not registered yet
        client.create_registered_model(name, description="audio-core exports")
    tags = {f"metric.{k}": f"{v:.6g}" for k, v in metrics.items()}
    tags.update({k: str(info[k]) for k in ("step", "model_type", "weights") if k in info})
    description = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()) or "no metrics"
    version = client.create_model_version(name, source, run_id=run_id, tags=tags,
                                          description=description)
    return version, run_id, source, metrics
