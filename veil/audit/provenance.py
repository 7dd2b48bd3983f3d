"""Signed provenance of outputs: ``OUTPUT.veil.json`` beside each anonymized file.

The manifest says what was done (anonymized, with which filter and settings hash), by which
veil and which model (name and sha256), to which input (its sha256, never its pixels or its
name), in which recorded run; it is signed with the data directory's Ed25519 key over its
canonical JSON. :func:`verify_output` recomputes the output's sha256 and checks the
signature, so a change to any byte of the output or of the manifest fails.

The manifest lives beside the file rather than inside it: that works for every format veil
writes (JPEG, PNG, WebP, MP4, MKV, ...) without re-encoding, and an output whose metadata was
stripped by a platform still verifies against its sidecar.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AuditError
from ..io.digest import sha256_now
from .keys import PublicKey, SigningKey, default_key_path, load_key
from .log import canonical

__all__ = ["FORMAT", "manifest_path", "build_manifest", "write_manifest", "verify_output", "ProvenanceReport"]

FORMAT = "veil-provenance/1"
SUFFIX = ".veil.json"
_SIG = b"veil-provenance:"


def manifest_path(output: Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + SUFFIX)


def build_manifest(output_name: str, output_sha256: str, output_bytes: int, facts: dict[str, Any],
                   key: SigningKey) -> dict[str, Any]:
    """A signed manifest for one output. ``facts``: input/process/model/run facts (no pixels)."""
    from .._version import __version__

    body = {"format": FORMAT, "veil_version": __version__,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "output": {"file": output_name, "sha256": output_sha256, "bytes": output_bytes}, **facts}
    sig = key.sign(_SIG + canonical(body))
    return {**body, "signature": {"alg": "Ed25519", "key_id": key.key_id, "public_key": key.public.hex, "value": sig}}


def write_manifest(output: Path, output_sha256: str, facts: dict[str, Any], key: SigningKey) -> Path:
    """Sign and write ``OUTPUT.veil.json`` atomically; returns its path."""
    from ..io.atomic import atomic_output

    output = Path(output)
    manifest = build_manifest(output.name, output_sha256, output.stat().st_size, facts, key)
    dst = manifest_path(output)
    with atomic_output(dst, ".json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    return dst


@dataclass
class ProvenanceReport:
    output: str
    manifest: str
    ok: bool = False
    key_id: str | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def verify_output(output: Path, manifest: Path | None = None, public: PublicKey | None = None) -> ProvenanceReport:
    """Check an output against its signed manifest; ``public`` is the key to trust (default:
    this data directory's signing key; without one, the key in the manifest, with a note)."""
    output = Path(output)
    mpath = Path(manifest) if manifest is not None else manifest_path(output)
    rep = ProvenanceReport(str(output), str(mpath))
    if not output.is_file():
        rep.problems.append(f"output not found: {output}")
        return rep
    try:
        doc = json.loads(mpath.read_text(encoding="utf-8"))
        sig = doc.pop("signature")
        claimed = doc["output"]
        if doc.get("format") != FORMAT:
            rep.problems.append(f"manifest format {doc.get('format')!r} is not {FORMAT!r}")
            return rep
    except FileNotFoundError:
        rep.problems.append(f"no provenance manifest: {mpath}")
        return rep
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        rep.problems.append(f"manifest {mpath} is unreadable or incomplete ({exc.__class__.__name__})")
        return rep
    rep.facts, rep.key_id = doc, sig.get("key_id")
    if public is None and default_key_path().exists():
        public = load_key(default_key_path(), create=False).public
    if public is None:
        try:
            public = PublicKey.from_hex(sig.get("public_key", ""))
        except AuditError as exc:
            rep.problems.append(f"manifest signature has no usable public key: {exc}")
            return rep
        rep.notes.append(f"checked against the key named in the manifest ({public.key_id}); pass --public-key "
                         "to check against the key you trust")
    elif sig.get("key_id") != public.key_id or sig.get("public_key") != public.hex:
        rep.problems.append(f"manifest signed by key {sig.get('key_id')}, not by the trusted key {public.key_id}")
    if not public.verify(str(sig.get("value", "")), _SIG + canonical(doc)):
        rep.problems.append("manifest signature is invalid: the manifest was altered or not signed by this key")
    digest = sha256_now(output)
    if digest != claimed.get("sha256"):
        rep.problems.append(f"output sha256 {digest[:12]}… differs from the signed {str(claimed.get('sha256'))[:12]}…: "
                            "the file was changed after veil wrote it")
    if claimed.get("file") != output.name:
        rep.notes.append(f"output was renamed (signed as {claimed.get('file')!r})")
    rep.ok = not rep.problems
    return rep

