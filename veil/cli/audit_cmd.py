"""``veil audit``: verify, show and export the audit log, hand out the public key, install a
C2PA certificate chain; ``veil verify``: check an output's signed provenance. The reading
commands work on a broken log (to say what is wrong), so they are not themselves recorded;
``c2pa-cert`` changes what veil does and is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from .common import one_line_errors, one_line_errors_unrecorded
from .progress import console

audit_app = typer.Typer(help="The audit log: verify its chain and signature, show and export events.",
                        no_args_is_help=True)

_LOG = typer.Option(None, "--log", help="Audit log file (default: audit.sqlite in veil's data directory).")
_PUB = typer.Option(None, "--public-key", help="Trust this public key (from `veil audit key`) instead of the local key.")


def _log(path: Optional[Path]):
    from ..audit import AuditLog

    return AuditLog(path)


def _public(path: Optional[Path]):
    from ..audit import load_public_key

    return load_public_key(path) if path is not None else None


def _say(text: str) -> None:
    console.print(text, markup=False, highlight=False)


def _finish(rep, as_json: bool) -> None:
    """The problems and notes of a failed / noted check, then exit 1 if it failed."""
    if not as_json:
        for p in rep.problems:
            _say(f"  - {p}")
        for n in rep.notes:
            _say(f"  note: {n}")
    if not rep.ok:
        raise typer.Exit(1)


def _print_report(rep, what: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(rep.as_dict(), indent=1))
    elif rep.ok:
        span = f"events {rep.first_seq}-{rep.last_seq}" if rep.events else "no events"
        console.print(f"{what}: OK ({rep.events} event(s), {span}, checkpoint signed by key {rep.key_id})",
                      markup=False, highlight=False)
    else:
        _say(f"{what}: FAILED")
    _finish(rep, as_json)


@audit_app.command("verify")
@one_line_errors_unrecorded
def verify(
    log: Optional[Path] = _LOG,
    public_key: Optional[Path] = _PUB,
    anchor: Optional[List[Path]] = typer.Option(None, "--anchor", help="An earlier export: the log must still extend its checkpoint."),
    bundle: Optional[Path] = typer.Option(None, "--bundle", help="Verify this export file on its own instead of the log."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Check every event's hash and link, and the signed checkpoint; exit 1 on any problem."""
    from ..audit.bundle import check_anchor, verify_bundle

    pub = _public(public_key)
    if bundle is not None:
        _print_report(verify_bundle(bundle, pub), str(bundle), as_json)
        return
    lg = _log(log)
    rep = lg.verify(pub)
    for a in anchor or []:
        check_anchor(rep, lg, a, pub)
    _print_report(rep, str(lg.path), as_json)


@audit_app.command("show")
@one_line_errors_unrecorded
def show(
    since: Optional[str] = typer.Option(None, help="Only events at or after this date/time (ISO, UTC unless given)."),
    until: Optional[str] = typer.Option(None, help="Only events before this date/time."),
    kind: Optional[List[str]] = typer.Option(None, "--kind", help="Only events whose kind starts with this (run, gallery, model...)."),
    limit: Optional[int] = typer.Option(None, help="Only the last N events."),
    log: Optional[Path] = _LOG,
) -> None:
    """Events, one readable line each (never embeddings, pixels or people's names)."""
    from ..audit.bundle import summary_line

    events = _log(log).events(since=since, until=until, kinds=kind)
    if limit is not None:
        events = events[-limit:] if limit > 0 else []
    for e in events:
        typer.echo(summary_line(e))
    if not events:
        console.print("no events", highlight=False)


@audit_app.command("export")
@one_line_errors_unrecorded
def export(
    out: Path = typer.Option(..., "--out", "-o", help="Write the bundle here (JSON); '-' for stdout."),
    since: Optional[str] = typer.Option(None, help="Events at or after this date/time (default: all)."),
    log: Optional[Path] = _LOG,
) -> None:
    """A machine-readable bundle: the events, the signed checkpoint and the verification.

    Keep it somewhere else: it verifies on its own (`veil audit verify --bundle`), and its
    checkpoint is an anchor that later catches a rolled-back or truncated log."""
    from ..audit.bundle import export_bundle
    from ..io.atomic import atomic_output

    doc = export_bundle(_log(log), since)
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    if str(out) == "-":
        typer.echo(text)
        return
    with atomic_output(out, ".json") as tmp:
        tmp.write_text(text, encoding="utf-8")
    ok = "verified" if doc["verification"]["ok"] else "FAILED verification (see the bundle)"
    console.print(f"{len(doc['events'])} event(s) -> {out} (log {ok})", markup=False, highlight=False)
    if not doc["verification"]["ok"]:
        raise typer.Exit(1)


@audit_app.command("key")
@one_line_errors_unrecorded
def key(out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the public key (hex) to this file.")) -> None:
    """The public half of veil's signing key, to hand to whoever checks logs and outputs."""
    from ..audit import load_key

    k = load_key(create=True)
    if out is not None:
        out.write_text(k.public.hex + "\n", encoding="ascii")
    typer.echo(f"{k.public.hex}  key id {k.key_id}  ({k.path})")


@audit_app.command("c2pa-cert")
@one_line_errors
def c2pa_cert(chain: Path = typer.Argument(..., help="PEM chain whose first certificate is for veil's key (`veil audit key`).")) -> None:
    """Install the certificate chain that lets veil embed C2PA manifests in JPEG/MP4 outputs
    (needs the c2pa-python package: pip install 'veil[c2pa]')."""
    import hashlib

    from ..audit import load_key, record_event
    from ..audit.c2pa_embed import available, install_chain

    key = load_key(create=True)
    path = install_chain(chain, key)
    record_event("audit.c2pa_chain", {"key_id": key.key_id, "chain_sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    _say(f"installed {path}; C2PA embedding is {'on' if available() else 'off (c2pa-python is not installed)'}")


@one_line_errors_unrecorded
def verify_output(
    output: Path = typer.Argument(..., help="An output veil wrote (its manifest is OUTPUT.veil.json)."),
    manifest: Optional[Path] = typer.Option(None, help="The manifest file, if not beside the output."),
    public_key: Optional[Path] = _PUB,
    as_json: bool = typer.Option(False, "--json", help="Print the result and the signed facts as JSON."),
) -> None:
    """Check an output against its signed provenance manifest; exit 1 if any byte changed."""
    from ..audit.provenance import verify_output as check

    rep = check(output, manifest, _public(public_key))
    _c2pa_note(rep, output)
    if as_json:
        typer.echo(json.dumps(rep.as_dict(), indent=1))
    elif rep.ok:
        f = rep.facts
        model = f.get("model") or {}
        console.print(f"{output}: OK, signed by key {rep.key_id} — "
                      f"{f.get('process', {}).get('action')} by veil {f.get('veil_version')} with model "
                      f"{model.get('name')} (sha256 {str(model.get('sha256'))[:12]}…), input sha256 "
                      f"{str(f.get('input', {}).get('sha256'))[:12]}…", markup=False, highlight=False)
    else:
        _say(f"{output}: FAILED")
    _finish(rep, as_json)



def _c2pa_note(rep, output: Path) -> None:
    """Say what a C2PA reader sees in the file, where one is installed (the sidecar decides)."""
    from ..audit import c2pa_embed
    from ..errors import AuditError

    if c2pa_embed._c2pa() is None or output.suffix.lower() not in c2pa_embed.FORMATS or not output.is_file():
        return
    try:
        state = c2pa_embed.read(output).get("validation_state", "?")
    except AuditError:
        return
    rep.notes.append(f"embedded C2PA manifest: {state} (a test or private CA shows as untrusted in C2PA readers)")
