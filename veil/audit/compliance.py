"""The compliance pack: what a deployer hands to a data-protection officer or an auditor,
written from the audit log, the model registry and the attached evaluation results.

``compliance_pack`` writes into one folder:

- ``activity.json`` / ``activity.md``: the period's activity (runs by command and outcome,
  files, frames, faces hidden, identity features used, gallery changes, model decisions,
  monitoring alerts, retention actions, actors) and the log's verification;
- ``instructions_for_use.md``: the facts a deployer needs (AI Act Art. 13): the models with
  licence, intended use, limits, release status and measured accuracy; the settings in use;
  the logging, oversight and retention in place;
- ``dpia_draft.md``: a DPIA draft (GDPR Art. 35) pre-filled with the processing facts, with
  the parts only the deployer can write marked ``TO COMPLETE``;
- ``audit_export.json``: the period's events with the signed checkpoint (verifiable alone
  with ``veil audit verify --bundle``).

Nothing here contains pixels, embeddings or people's names: the log holds none.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

from .._version import __version__
from ..io.atomic import atomic_output
from .bundle import export_bundle
from .log import AuditLog, Event
from .retention import load_retention

__all__ = ["activity", "compliance_pack"]


def activity(events: list[Event]) -> dict[str, Any]:
    """Counts over a period's events (no names, no paths)."""
    from .runs import current_run

    ends = [e for e in events if e.kind == "run.end"]
    this = current_run()  # the run writing this report has not ended yet
    starts = {e.body.get("run_id") for e in events if e.kind == "run.start"} - {this.run_id if this else None}
    ended = {e.body.get("run_id") for e in ends}
    anon = [e for e in ends if "items" in e.body]
    items = [it for e in anon for it in e.body["items"]]
    identity_runs = [e for e in anon if _identity_used(e.body.get("settings") or {})]
    return {
        "events": len(events),
        "first": events[0].ts if events else None,
        "last": events[-1].ts if events else None,
        "actors": dict(Counter(e.actor for e in events)),
        "runs_by_command": dict(Counter(e.body.get("command") for e in ends)),
        "runs_by_status": dict(Counter(e.body.get("status") for e in ends)),
        "runs_without_end": len(starts - ended),
        "files": {"processed": len(items), **Counter(it.get("status") for it in items)},
        "frames": sum(it.get("counts", {}).get("frames", 0) for it in items),
        "face_detections": sum(it.get("counts", {}).get("faces", 0) for it in items),
        "face_detections_hidden": sum(it.get("counts", {}).get("anonymized", 0) for it in items),
        "runs_leaving_faces_visible_by_filter": sum(1 for e in anon if e.body.get("anonymizes") is False),
        "runs_with_identity_features": len(identity_runs),
        "models_used": dict(Counter(f"{(e.body.get('model') or {}).get('name')}:{str((e.body.get('model') or {}).get('sha256'))[:12]}"
                                    for e in anon)),
        "settings_used": dict(Counter(e.body.get("settings_sha256") for e in anon)),
        "gallery_changes": dict(Counter(e.kind for e in events if e.kind.startswith("gallery."))),
        "review_actions": dict(Counter(e.kind for e in events if e.kind.startswith("review."))),
        "reviewers": sorted({e.body.get("who") for e in events if e.kind.startswith("review.") and e.body.get("who") != "veil"}),
        "model_decisions": [{k: e.body.get(k) for k in ("model", "decision", "requirements", "missed")} | {"ts": e.ts}
                            for e in events if e.kind == "model.promote"],
        "monitoring_alerts": [{"ts": e.ts, "alerts": e.body.get("alerts")} for e in events if e.kind == "monitor.alert"],
        "retention_actions": dict(Counter(e.kind for e in events if e.kind.startswith(("retention.", "audit.pruned")))),
    }


def _identity_used(settings: dict[str, Any]) -> bool:
    ident = settings.get("identify") or {}
    return bool(ident.get("spare") or ident.get("only") or ident.get("spare_enrolled"))


def _write(path: Path, text: str) -> None:
    with atomic_output(path, path.suffix) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _models() -> list[dict[str, Any]]:
    from ..models.catalog import catalog
    from ..models.records import ModelRecords

    records = ModelRecords()
    out = []
    for e in catalog().values():
        d = e.as_dict()
        d["status"] = records.status(e.name, e.sha256) if e.sha256 else "not pinned"
        evs = records.evaluations(e.name, e.sha256) if e.sha256 else []
        d["evaluation"] = records.metrics(e.name, e.sha256) if evs and e.sha256 else {}
        d["evaluation_reports"] = [{"kind": v.kind, "report_sha256": v.report_sha256, "attached": v.attached} for v in evs]
        out.append(d)
    return out


def _activity_md(act: dict[str, Any], verification: dict[str, Any], since: str | None, until: str | None) -> str:
    lines = [f"# veil activity report: {since or 'start of log'} to {until or 'now'}", "",
             f"Audit log verification: **{'OK' if verification['ok'] else 'FAILED'}**"
             + ("" if verification["ok"] else " — " + "; ".join(verification["problems"])), "",
             "| fact | value |", "|---|---|"]
    for k, v in act.items():
        if k in ("model_decisions", "monitoring_alerts"):
            v = len(v)
        lines.append(f"| {k.replace('_', ' ')} | {json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v} |")
    if act["model_decisions"]:
        lines += ["", "## Model release decisions", ""]
        lines += [f"- {d['ts'][:19]}Z {d['model']}: **{d['decision']}** ({', '.join(d['requirements'] or [])})"
                  + (f"; missed: {'; '.join(d['missed'])}" if d["missed"] else "") for d in act["model_decisions"]]
    if act["monitoring_alerts"]:
        lines += ["", "## Monitoring alerts", ""]
        lines += [f"- {a['ts'][:19]}Z drift in {', '.join(a['alerts'])}" for a in act["monitoring_alerts"]]
    return "\n".join(lines) + "\n"


def _instructions_md(models: list[dict[str, Any]], act: dict[str, Any]) -> str:
    r = load_retention()
    lines = ["# Instructions for use: facts (AI Act Art. 13)", "",
             f"veil {__version__}: anonymizes faces in images, video files and live streams. Generated from the "
             "model registry and the audit log; the deployer adds its own context.", "",
             "## Models", ""]
    for m in models:
        ev = ", ".join(f"{k} = {v:.3f}" for k, v in sorted(m["evaluation"].items()) if not k.startswith("conditions."))
        lines += [f"### {m['name']} ({m['kind']})", "",
                  f"- version: {m['version']}; sha256: `{m['sha256'] or 'not pinned'}`; licence: {m['license']}",
                  f"- source: {m['source']}", f"- intended use: {m['intended_use']}",
                  f"- not for: {m['out_of_scope'] or '-'}",
                  f"- release status: {m['status']}; installed: {'yes' if m['installed'] else 'no'}",
                  f"- measured (attached evaluations): {ev or 'none attached (run `veil eval` and `veil models attach`)'}", ""]
    lines += ["## Accuracy and robustness (Art. 15)", "",
              "The measured values above come from `veil eval widerface` / `veil eval conditions` reports attached to "
              "the exact model file (by sha256). docs/model-card.md lists the known weaker conditions (small, dark, "
              "blurred faces; per-group recall). A missed face is shown un-anonymized: check outputs where it matters.", "",
              "## Settings used in this period", "",
              f"{len(act['settings_used'])} distinct settings (by sha256; each run's full settings are in its "
              f"`run.end` event): " + ", ".join(f"`{str(k)[:12]}` x{v}" for k, v in act["settings_used"].items()), "",
              "## Record-keeping (Art. 12) and oversight (Art. 14)", "",
              "- Every command writes `run.start` / `run.end` events to a hash-chained, signed audit log "
              "(`veil audit verify`); outputs carry a signed provenance manifest (`veil verify OUTPUT`).",
              "- Oversight: a person chooses the settings and reviews outputs; veil has no automatic decision about a "
              "person beyond hiding or (with an enrolled, consenting gallery) keeping a face visible. "
              "Review actions are not yet recorded by veil (no review step exists): TO COMPLETE by the deployer's procedure.",
              f"- Retention: audit events {r.audit_days} days; outputs "
              f"{'kept' if r.outputs_days is None else f'{r.outputs_days} days'} (`veil retention`).", ""]
    return "\n".join(lines)


def _dpia_md(act: dict[str, Any], since: str | None, until: str | None) -> str:
    r = load_retention()
    ident = act["runs_with_identity_features"]
    return "\n".join([
        "# Data protection impact assessment: draft (GDPR Art. 35)", "",
        f"Pre-filled by `veil compliance report` from the audit log ({since or 'start'} to {until or 'now'}). "
        "Sections marked TO COMPLETE need the controller's knowledge.", "",
        "## 1. Description of the processing", "",
        "- Purpose: remove identifiable faces from images and video before publication or sharing. TO COMPLETE: the "
        "controller's concrete purposes and legal basis (Art. 6; Art. 9 where the gallery is used).",
        f"- Volume in the period: {act['files'].get('processed', 0)} files, {act['frames']} frames, "
        f"{act['face_detections']} face detections, {act['face_detections_hidden']} hidden.",
        f"- Identity features (`--spare` / `--only`, gallery of enrolled people): used in {ident} run(s); gallery "
        f"changes: {json.dumps(act['gallery_changes'])}." + (" These process biometric data (Art. 9): see section 4."
                                                           if ident or act["gallery_changes"] else ""),
        f"- Actors: {', '.join(act['actors']) or '-'}.",
        "- Processing happens locally (no network service is called); inputs are identified by sha256 only in the log.", "",
        "## 2. Necessity and proportionality", "",
        "- Data minimisation: the audit log holds hashes, counts and settings; never pixels, face crops, embeddings "
        "or names (people are referenced by a one-way hash).",
        f"- Storage limitation: audit events kept {r.audit_days} days (minimum 6 months, AI Act Art. 26(6)); outputs "
        f"{'kept until deleted by the controller' if r.outputs_days is None else f'deleted after {r.outputs_days} days'}; "
        "expired gallery consents are purged automatically at use.",
        "- TO COMPLETE: why anonymization (rather than not recording) is necessary for the purpose.", "",
        "## 3. Risks to the rights and freedoms of data subjects", "",
        "- A face the detector misses is published un-anonymized (residual risk measured in the model card and the "
        "attached evaluations; higher for small, dark or blurred faces).",
        f"- Settings that do not anonymize (`--filter none/debug`) were used in {act['runs_leaving_faces_visible_by_filter']} run(s).",
        "- The gallery (if used) holds biometric templates of enrolled people: encrypted at rest, deleted on removal "
        "or consent expiry.",
        "- TO COMPLETE: risks specific to the controller's context (who is filmed, vulnerable groups, publication reach).", "",
        "## 4. Measures", "",
        "- Technical: fail-closed processing (no partial or un-anonymized output on errors), signed provenance per "
        "output, hash-chained signed audit log, model files verified by sha256, release gates on measured accuracy, "
        "drift monitoring with alerts.",
        "- Where the gallery is used for identification of people in public spaces, the deployment may be high-risk "
        "or prohibited under the AI Act (see docs/compliance.md): TO COMPLETE with the controller's assessment.",
        "- TO COMPLETE: organisational measures (who may run veil, review of outputs before publication, training).", "",
        "## 5. Consultation and sign-off", "", "TO COMPLETE: DPO opinion, date, decision.", ""])


def compliance_pack(out: Path, since: str | None = None, until: str | None = None, log: AuditLog | None = None) -> dict[str, Path]:
    """Write the pack into ``out``; returns the files written."""
    log = log or AuditLog()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    events = log.events(since=since, until=until)
    verification = log.verify().as_dict()
    act = activity(events)
    models = _models()
    doc = {"format": "veil-compliance/1", "veil_version": __version__,
           "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "period": {"since": since, "until": until}, "audit_verification": verification, "activity": act,
           "models": models, "retention": load_retention().__dict__}
    files = {"activity_json": out / "activity.json", "activity_md": out / "activity.md",
             "instructions": out / "instructions_for_use.md", "dpia": out / "dpia_draft.md",
             "audit_export": out / "audit_export.json"}
    _write(files["activity_json"], json.dumps(doc, indent=1, ensure_ascii=False))
    _write(files["activity_md"], _activity_md(act, verification, since, until))
    _write(files["instructions"], _instructions_md(models, act))
    _write(files["dpia"], _dpia_md(act, since, until))
    _write(files["audit_export"], json.dumps(export_bundle(log, since), indent=1, ensure_ascii=False))
    return files
