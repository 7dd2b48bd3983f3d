"""``veil models``: the registry of every model veil can run (list, show, verify), evaluation
results attached from ``veil eval`` reports, release gates (promote), and fetching the
optional depth models (sha256-verified) into the data dir."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import one_line_errors
from .progress import console

models_app = typer.Typer(help="Model registry: list, show, verify, attach evaluations, promote with release gates; "
                              "fetch optional depth models.", no_args_is_help=True)


def _say(text: str) -> None:
    console.print(text, markup=False, highlight=False)


@models_app.command("list")
@one_line_errors
def list_models() -> None:
    """Every model veil can run: kind, version, licence, pinned sha256, release status, installed."""
    from ..depth.models import models_dir
    from ..models.catalog import catalog
    from ..models.records import ModelRecords

    records = ModelRecords()
    for e in catalog().values():
        path = e.path()
        pinned = e.sha256[:12] + "…" if e.sha256 else "not pinned (fetch needs --sha256)"
        status = records.status(e.name, e.sha256) if e.sha256 else "-"
        _say(f"{e.name}\t{e.kind}\t{e.version}\t{e.license}\tsha256 {pinned}\t{status}\t"
             f"{'installed: ' + str(path) if path else 'not installed'}")
    _say(f"depth models folder: {models_dir()}")


@models_app.command("show")
@one_line_errors
def show(name: str = typer.Argument(..., help="Model name (see `veil models list`).")) -> None:
    """A model's facts, its attached evaluation results and its release decisions."""
    from ..models.catalog import entry
    from ..models.records import ModelRecords

    e = entry(name)
    for key, value in e.as_dict().items():
        _say(f"{key}: {value if value not in (None, '') else '-'}")
    records = ModelRecords()
    evs = records.evaluations(name)
    _say(f"evaluations: {len(evs)}")
    for ev in evs:
        current = "" if ev.model_sha256 == e.sha256 else " (another file)"
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(ev.metrics.items()))
        _say(f"  {ev.attached} {ev.kind} {Path(ev.report).name} sha256 {ev.report_sha256[:12]}…{current}: {metrics}")
    for d in records.decisions(name):
        why = f"; missed: {'; '.join(d.missed)}" if d.missed else ""
        _say(f"decision {d.decided} by {d.actor}: {d.decision} ({', '.join(d.requirements)}){why}")
    _say(f"status: {records.status(name, e.sha256)}")


@models_app.command("verify")
@one_line_errors
def verify(names: Optional[List[str]] = typer.Argument(None, help="Models to check (default: all installed).")) -> None:
    """Re-hash model files against their pinned sha256; exit 1 on any mismatch."""
    from ..audit import record_event
    from ..models.catalog import catalog, entry, verify_entry

    entries = [entry(n) for n in names] if names else list(catalog().values())
    results = {}
    for e in entries:
        state, digest = verify_entry(e)
        results[e.name] = {"state": state, "sha256": digest}
        _say(f"{e.name}: {state}" + (f" (sha256 {digest})" if digest else ""))
    record_event("model.verify", {"models": results})
    if any(r["state"] == "mismatch" for r in results.values()) or \
            (names and any(r["state"] == "not installed" for r in results.values())):
        raise typer.Exit(1)


def _installed_sha(name: str) -> str:
    from ..errors import ModelError
    from ..models.catalog import entry, verify_entry

    state, digest = verify_entry(entry(name))
    if state == "not installed" or digest is None:
        raise ModelError(f"model {name!r} is not installed")
    if state == "mismatch":
        raise ModelError(f"model {name!r}: installed file's sha256 {digest[:12]}… differs from the pinned one")
    return digest


@models_app.command("attach")
@one_line_errors
def attach(
    name: str = typer.Argument(..., help="Model name."),
    report: Path = typer.Argument(..., help="report.json of `veil eval widerface` or `veil eval conditions`."),
) -> None:
    """Attach an evaluation report's results to the installed model file (by its sha256)."""
    from ..audit import current_actor, record_event
    from ..errors import ModelError
    from ..io.digest import sha256_now
    from ..io.jsonfile import load_json
    from ..models.gates import report_metrics
    from ..models.records import Evaluation, ModelRecords

    sha = _installed_sha(name)
    doc = load_json(report, "report")
    kind, metrics = report_metrics(doc)
    evaluated = ((doc.get("data") or {}).get("detector") or {}).get("model_sha256")
    if evaluated and evaluated != sha:
        raise ModelError(f"{report} evaluated model file sha256 {evaluated[:12]}…, not {name} ({sha[:12]}…)")
    ev = Evaluation(name, sha, kind, metrics, str(report.resolve()), sha256_now(report), ModelRecords.now(), current_actor())
    record_event("model.evaluation", {"model": name, "model_sha256": sha, "kind": kind, "metrics": metrics,
                                      "report_sha256": ev.report_sha256, "model_named_in_report": bool(evaluated)})
    ModelRecords().attach(ev)
    _say(f"attached {kind} results to {name} ({len(metrics)} metrics): "
         + ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()) if not k.startswith("conditions.")))


@models_app.command("promote")
@one_line_errors
def promote(
    name: str = typer.Argument(..., help="Model name."),
    require: List[str] = typer.Option(..., "--require", help="A release requirement, e.g. 'wider.hard>=0.80' (repeatable)."),
    mlflow: bool = typer.Option(False, "--mlflow", help="When promoted, also register the model file as an MLflow "
                                                         "model version with --mlflow-alias (needs veil[mlflow])."),
    mlflow_alias: str = typer.Option("production", "--mlflow-alias", help="MLflow alias given to the promoted version."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking/registry URI "
                                               "(default: sqlite:///<veil data dir>/mlflow.db)."),
) -> None:
    """Release a model only if its attached evaluations meet every requirement; the decision
    (promoted or refused, and why) is recorded in the audit log."""
    from ..audit import current_actor, record_event
    from ..models.gates import check, parse_requirement
    from ..models.records import Decision, ModelRecords

    reqs = [parse_requirement(r) for r in require]
    if mlflow:
        from ..models.mlflow_sync import check_alias, require_mlflow

        require_mlflow()  # before anything is decided or recorded
        check_alias(mlflow_alias)
    sha = _installed_sha(name)
    records = ModelRecords()
    metrics = records.metrics(name, sha)
    missed = check(reqs, metrics)
    decision = "refused" if missed else "promoted"
    d = Decision(name, sha, decision, [str(r) for r in reqs], missed, ModelRecords.now(), current_actor())
    record_event("model.promote", {"model": name, "model_sha256": sha, "decision": decision,
                                   "requirements": d.requirements, "missed": missed,
                                   "measured": {r.metric: metrics.get(r.metric) for r in reqs}})
    records.decide(d)
    if missed:
        _say(f"{name}: REFUSED; missed: " + "; ".join(missed))
        raise typer.Exit(1)
    _say(f"{name}: promoted ({', '.join(d.requirements)})")
    if mlflow:
        from ..errors import ModelError
        from ..models.catalog import entry
        from ..models.mlflow_sync import default_tracking_uri, register_version

        uri = tracking_uri or default_tracking_uri()
        path = entry(name).path()
        if path is None:
            raise ModelError(f"model {name!r} is not installed")
        version = register_version(name, sha, path, mlflow_alias, uri)
        record_event("model.mlflow", {"model": name, "model_sha256": sha, "tracking_uri": uri,
                                      "version": version, "alias": mlflow_alias})
        _say(f"{name}: MLflow model version {version} is now '{mlflow_alias}' ({uri})")


@models_app.command("mlflow-log")
@one_line_errors
def mlflow_log(
    report: Path = typer.Argument(..., help="report.json of `veil eval widerface` or `veil eval conditions`."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking URI "
                                               "(default: sqlite:///<veil data dir>/mlflow.db)."),
) -> None:
    """Log an evaluation report as an MLflow run (params: settings, preset, model sha256; metrics:
    its numeric results; artifacts: the report files). Needs veil[mlflow]."""
    from ..audit import record_event
    from ..models.mlflow_sync import default_tracking_uri, log_report

    uri = tracking_uri or default_tracking_uri()
    run_id, kind, metrics = log_report(report, uri)
    record_event("model.mlflow_run", {"report": str(report.resolve()), "kind": kind, "tracking_uri": uri,
                                      "run_id": run_id, "metrics": len(metrics)})
    _say(f"logged {kind} report as MLflow run {run_id} ({len(metrics)} metrics) in {uri}")


@models_app.command("fetch")
@one_line_errors
def fetch(
    name: str = typer.Argument(..., help="Known model name (see `veil models list`) or a name for --url."),
    url: Optional[str] = typer.Option(None, help="Download from this URL instead of the known one."),
    sha256: Optional[str] = typer.Option(None, help="Expected sha256 (required when the model has no pinned one)."),
) -> None:
    """Download a model, verify its sha256, and install it atomically (nothing on failure)."""
    from ..audit import record_event
    from ..depth.models import fetch_model
    from ..io.digest import sha256_now

    path = fetch_model(name, url=url, sha256=sha256)
    record_event("model.fetch", {"model": name, "url": url, "sha256": sha256_now(path), "path": str(path)})
    _say(f"{name}: verified and installed -> {path}")
    _say(f"use it with: veil anonymize INPUT --depth-model {path}")
