"""Optional MLflow mirror of the model registry (``pip install 'veil[mlflow]'``): evaluation
reports logged as MLflow runs, promoted model files registered as MLflow model versions with an
alias.

veil's own records (``models.sqlite``) and the audit log stay the evidence; MLflow is a view for
teams that already browse experiments there. By default it is local and private: a SQLite
tracking store ``mlflow.db`` and artifacts under veil's data directory, and MLflow's usage
telemetry is switched off before MLflow is imported.

A run carries: params = the report's detector settings, preset, detector and model sha256;
metrics = every numeric result of the report's ``data`` flattened with dotted names (lists
such as PR curves left out), plus the release-gate names of :func:`veil.models.gates.report_metrics`;
artifacts = the report files (``.json``, ``.md``, ``.html`` and the figures it lists).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any

from ..dirs import data_dir
from ..errors import ConfigError, ModelError
from ..io.digest import sha256_now
from ..io.jsonfile import load_json
from .gates import report_metrics

__all__ = ["EXPERIMENT", "default_tracking_uri", "require_mlflow", "check_alias", "client", "flatten_numbers",
           "log_report", "register_version"]

EXPERIMENT = "veil"
_MISSING = "MLflow integration needs the mlflow extra: pip install 'veil[mlflow]'"
_BAD_CHARS = re.compile(r"[^A-Za-z0-9_\-. /]")  # what MLflow accepts in metric and param names
_SHA_TAG = "veil.model_sha256"


def default_tracking_uri() -> str:
    return f"sqlite:///{data_dir(create=True) / 'mlflow.db'}"


def _mlflow():
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow  # noqa: F401
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError(_MISSING) from None
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # "Creating initial MLflow database tables"
    return MlflowClient


def require_mlflow() -> None:
    """Fail (one line) before anything is decided or written when MLflow is not installed."""
    _mlflow()


def client(tracking_uri: str | None = None):
    """An ``MlflowClient`` on ``tracking_uri`` (default: the local SQLite store), also used as
    the model-registry URI."""
    uri = tracking_uri or default_tracking_uri()
    return _mlflow()(tracking_uri=uri, registry_uri=uri)


@contextlib.contextmanager
def _one_line(uri: str):
    """MLflow's own errors (unreachable server, bad URI, store errors) as one veil error line."""
    _mlflow()
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"MLflow ({uri}): {first}") from None


def check_alias(alias: str) -> None:
    """MLflow's alias rules (no 'latest', no 'v<number>'), checked before a promotion is recorded."""
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", alias) or re.fullmatch(r"v\d+|latest", alias, re.IGNORECASE):
        raise ConfigError(f"--mlflow-alias {alias!r}: letters, digits, '_' and '-' only, not 'latest' or 'v<number>'")


def _artifact_root(uri: str) -> str | None:
    """Artifacts next to a SQLite store (MLflow's own default is ./mlruns in the working
    directory); a server decides for itself."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlflow-artifacts").resolve().as_uri()
    return None


def _experiment_id(c, uri: str) -> str:
    exp = c.get_experiment_by_name(EXPERIMENT)
    return exp.experiment_id if exp else c.create_experiment(EXPERIMENT, artifact_location=_artifact_root(uri))


def _name(key: str) -> str:
    return _BAD_CHARS.sub("_", key)


def flatten_numbers(obj: Any, prefix: str = "") -> dict[str, float]:
    """Finite numbers (not booleans) in nested dicts, keyed by dotted path; lists skipped."""
    out: dict[str, float] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten_numbers(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool) and math.isfinite(obj):
        out[_name(prefix)] = float(obj)
    return out


def _params(data: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str | None] = {f"settings.{k}": v if isinstance(v, str) else json.dumps(v)
                                  for k, v in (data.get("settings") or {}).items()}
    out.update({f"bootstrap.{k}": str(v) for k, v in (data.get("bootstrap") or {}).items()})
    detector = data.get("detector") or {}
    out.update({"preset": data.get("preset"), "detector": detector.get("name"), "model_sha256": detector.get("model_sha256")})
    return {_name(k): str(v) for k, v in out.items() if v is not None}


def _report_files(report: Path, doc: dict[str, Any]) -> list[Path]:
    files = [report.with_suffix(s) for s in (".json", ".md", ".html")]
    for sec in doc.get("sections") or []:
        files += [report.parent / f["path"] for f in (sec.get("figures") or []) if f.get("path")]
    return [f for f in dict.fromkeys(files) if f.is_file()]


def log_report(report: Path, tracking_uri: str | None = None) -> tuple[str, str, dict[str, float]]:
    """Log a ``veil eval widerface`` / ``veil eval conditions`` report as a finished MLflow run
    in the "veil" experiment; returns ``(run_id, kind, metrics)``."""
    doc = load_json(report, "report")
    kind, gate_metrics = report_metrics(doc)  # refuses anything that is not an evaluation report
    data = doc["data"]
    skip = {"settings", "bootstrap", "pr"}
    metrics = flatten_numbers({k: v for k, v in data.items() if k not in skip})
    metrics.update({_name(k): v for k, v in gate_metrics.items() if math.isfinite(v)})
    uri = tracking_uri or default_tracking_uri()
    with _one_line(uri):
        return _log(client(uri), uri, report, doc, kind, metrics)


def _log(c, uri: str, report: Path, doc: dict[str, Any], kind: str, metrics: dict[str, float]):
    data = doc["data"]
    detector = data.get("detector") or {}
    meta = doc.get("meta") or {}
    tags = {"veil.kind": kind, "veil.report": str(report.resolve()), "veil.report_sha256": sha256_now(report),
            "veil.version": str(meta.get("veil_version", "")),
            "mlflow.runName": f"{kind} {meta.get('created', '')}".strip()}
    if detector.get("model_sha256"):
        tags.update({_SHA_TAG: detector["model_sha256"], "veil.model": str(detector.get("name", ""))})
    run = c.create_run(_experiment_id(c, uri), tags=tags)
    run_id = run.info.run_id
    try:
        from mlflow.entities import Metric, Param

        ts = run.info.start_time
        c.log_batch(run_id, metrics=[Metric(k, v, ts, 0) for k, v in sorted(metrics.items())],
                    params=[Param(k, v) for k, v in sorted(_params(data).items())])
        for f in _report_files(report, doc):
            rel = f.parent.relative_to(report.parent)
            c.log_artifact(run_id, str(f), None if str(rel) == "." else str(rel))
    except Exception:
        c.set_terminated(run_id, "FAILED")
        raise
    c.set_terminated(run_id, "FINISHED")
    return run_id, kind, metrics


def register_version(name: str, sha256: str, path: Path, alias: str, tracking_uri: str | None = None) -> int:
    """Register the model file (once per sha256) as a version of registered model ``name`` and
    point ``alias`` at it; the version links the latest run logged for that file, if any."""
    check_alias(alias)
    uri = tracking_uri or default_tracking_uri()
    with _one_line(uri):
        return _register(client(uri), uri, name, sha256, path, alias)


def _register(c, uri: str, name: str, sha256: str, path: Path, alias: str) -> int:
    if not c.search_registered_models(filter_string=f"name = '{name}'"):
        c.create_registered_model(name, description=f"veil model {name}")
    known = [v for v in c.search_model_versions(f"name = '{name}'") if (v.tags or {}).get(_SHA_TAG) == sha256]
    if known:
        version = max(int(v.version) for v in known)
    else:
        runs = c.search_runs([_experiment_id(c, uri)], filter_string=f"tags.`{_SHA_TAG}` = '{sha256}'",
                             order_by=["attributes.start_time DESC"], max_results=1)
        mv = c.create_model_version(name, source=Path(path).resolve().as_uri(), run_id=runs[0].info.run_id if runs else None,
                                    tags={_SHA_TAG: sha256})
        version = int(mv.version)
    c.set_registered_model_alias(name, alias, str(version))
    return version

