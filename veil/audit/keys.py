"""The Ed25519 key that signs the audit log's checkpoints and the outputs' provenance manifests.

One key per data directory (``signing.key``, PEM, mode 0600), created on first use. Losing it
does not lose the log, but nothing new can be signed into it: veil refuses to start a second
key on a log signed by the first (the key id is stored in the log). The public half can be
handed to anyone who must check a log or an output (``veil audit key``) without being able to
sign.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..dirs import data_dir
from ..errors import AuditError

__all__ = ["SigningKey", "PublicKey", "default_key_path", "load_key", "load_public_key"]

KEY_FILE = "signing.key"


def default_key_path() -> Path:
    return data_dir() / KEY_FILE


@dataclass(frozen=True)
class PublicKey:
    """The verifying half: raw 32 bytes, shown as hex; ``key_id`` is its sha256 prefix."""

    raw: bytes

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()[:16]

    @property
    def hex(self) -> str:
        return self.raw.hex()

    @classmethod
    def from_hex(cls, text: str) -> "PublicKey":
        try:
            raw = bytes.fromhex(text.strip())
        except ValueError:
            raise AuditError(f"public key is not hex: {text[:20]!r}") from None
        if len(raw) != 32:
            raise AuditError(f"an Ed25519 public key has 32 bytes, got {len(raw)}")
        return cls(raw)

    def verify(self, signature_hex: str, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(bytes.fromhex(signature_hex), message)
        except (InvalidSignature, ValueError):
            return False
        return True


class SigningKey:
    def __init__(self, private: Ed25519PrivateKey, path: Path | None = None):
        self._private = private
        self.path = path
        self.public = PublicKey(private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, message: bytes) -> str:
        return self._private.sign(message).hex()


def load_key(path: Path | None = None, create: bool = True) -> SigningKey:
    """The signing key at ``path`` (default ``signing.key`` in the data directory).

    ``create`` makes one (mode 0600) when the file does not exist; two processes racing to
    create it end up with the same key (the file is linked into place, never overwritten).
    """
    path = Path(path) if path is not None else default_key_path()
    if not path.exists():
        if not create:
            raise AuditError(f"signing key not found: {path}")
        _create(path)
    _check_mode(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuditError(f"cannot read signing key {path}: {exc.strerror}") from None
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise AuditError(f"signing key {path} is not an unencrypted PEM private key (damaged?)") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise AuditError(f"signing key {path} is not an Ed25519 key")
    return SigningKey(private, path)


def load_public_key(path: Path) -> PublicKey:
    """A public key file as written by ``veil audit key`` (hex), or a PEM public/private key."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AuditError(f"cannot read public key {path}: {exc.strerror}") from None
    if b"PRIVATE KEY" in data:
        return load_key(path, create=False).public
    if b"PUBLIC KEY" in data:
        try:
            pub = serialization.load_pem_public_key(data)
        except ValueError:
            raise AuditError(f"{path}: not a PEM public key") from None
        if not isinstance(pub, Ed25519PublicKey):
            raise AuditError(f"{path}: not an Ed25519 public key")
        return PublicKey(pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    return PublicKey.from_hex(data.decode("ascii", "replace"))


def _create(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # atomic and never replaces a key another process just made
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise AuditError(f"cannot create signing key {path}: {exc.strerror}") from None


def _check_mode(path: Path) -> None:
    if sys.platform == "win32":
        return
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise AuditError(f"signing key {path} is readable by other users (mode {mode:o}); run: chmod 600 {path}")
