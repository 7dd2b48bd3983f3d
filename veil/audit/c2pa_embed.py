"""Optional: a C2PA manifest embedded in JPEG and MP4 outputs (extra ``veil[c2pa]``).

C2PA ("Content Credentials") needs an X.509 certificate chain for the signing key; veil signs
with its own Ed25519 key, so the deployer gets a certificate for that key (its public half:
``veil audit key``) from a CA and installs the chain with ``veil audit c2pa-cert CHAIN.pem``.
Embedding then happens when both the ``c2pa`` package and ``c2pa_chain.pem`` in veil's data
directory are present; otherwise outputs carry only the sidecar manifest (``OUTPUT.veil.json``),
which is always written and always covers the final bytes (C2PA included).

The manifest says: created by veil, edited (faces anonymized), with veil's facts (input sha256,
model, settings hash, counts) as an ``org.veil.provenance`` assertion; no thumbnail (the output
is its own best preview, and a thumbnail would double the file's pixels).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..dirs import data_dir
from ..errors import AuditError
from ..io.atomic import atomic_output
from .keys import SigningKey

__all__ = ["FORMATS", "available", "chain_path", "install_chain", "embed"]

FORMATS = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".mp4": "video/mp4"}
CHAIN_FILE = "c2pa_chain.pem"


def chain_path() -> Path:
    return data_dir() / CHAIN_FILE


def _c2pa():
    try:
        import c2pa
    except ImportError:
        return None
    return c2pa


def available() -> bool:
    """The package is installed and a certificate chain for veil's key is in place."""
    return _c2pa() is not None and chain_path().is_file()


def install_chain(pem: Path, key: SigningKey) -> Path:
    """Check that ``pem``'s first certificate certifies ``key`` and install it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        data = Path(pem).read_bytes()
        certs = x509.load_pem_x509_certificates(data)
    except (OSError, ValueError) as exc:
        raise AuditError(f"{pem}: not a PEM certificate chain ({exc})") from None
    leaf = certs[0].public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) \
        if hasattr(certs[0].public_key(), "public_bytes") else b""
    if leaf != key.public.raw:
        raise AuditError(f"{pem}: its first certificate is not for veil's signing key {key.key_id} "
                         "(get one for the key `veil audit key` prints)")
    dst = chain_path()
    with atomic_output(dst, ".pem") as tmp:
        tmp.write_bytes(data)
    return dst


def embed(output: Path, facts: dict[str, Any], key: SigningKey) -> bool:
    """Embed a signed C2PA manifest into ``output`` in place (atomically); False when the
    format is not one C2PA covers here or embedding is not set up."""
    c2pa = _c2pa()
    fmt = FORMATS.get(Path(output).suffix.lower())
    if c2pa is None or fmt is None or not chain_path().is_file():
        return False
    from .._version import __version__

    manifest = {
        "claim_generator_info": [{"name": "veil", "version": __version__}],
        "title": Path(output).name,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [
                {"action": "c2pa.created", "softwareAgent": {"name": "veil", "version": __version__},
                 "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"},
                {"action": "c2pa.edited", "softwareAgent": {"name": "veil", "version": __version__},
                 "description": "faces anonymized"}]}},
            {"label": "org.veil.provenance", "data": json.loads(json.dumps(facts))},
        ],
    }
    settings = c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    context = c2pa.Context(settings)
    try:
        signer = c2pa.Signer.from_callback(lambda data: bytes.fromhex(key.sign(data)), c2pa.C2paSigningAlg.ED25519,
                                           chain_path().read_text(encoding="ascii"), None)
        builder = c2pa.Builder(manifest, context)
        with atomic_output(Path(output)) as tmp, open(output, "rb") as src, open(tmp, "w+b") as dst:
            builder.sign(signer, fmt, src, dst)
    except c2pa.C2paError as exc:
        raise AuditError(f"{output}: C2PA embedding failed: {exc}") from None
    return True


def read(output: Path) -> dict[str, Any]:
    """The embedded manifest store as C2PA readers see it (``validation_state`` and all)."""
    c2pa = _c2pa()
    if c2pa is None:
        raise AuditError("reading C2PA manifests needs the c2pa-python package (pip install 'veil[c2pa]')")
    try:
        return json.loads(c2pa.Reader(str(output)).json())
    except c2pa.C2paError as exc:
        raise AuditError(f"{output}: no readable C2PA manifest ({exc})") from None
