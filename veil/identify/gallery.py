"""The gallery of enrolled people: SQLite, embeddings encrypted at rest.

Embeddings are biometric data. In the gallery file they are encrypted with AES-256-GCM
(``cryptography``), each bound (associated data) to its person's row id and the embedder
name, so a blob copied to another person does not decrypt. The key (32 random bytes,
urlsafe base64) comes from ``$VEIL_GALLERY_KEY`` or from a key file that must not be
readable by group or others (0600); the first enrolment creates the key file when there
is none. A known token encrypted with the key is stored in the file, so a wrong key is an
error (:class:`GalleryKeyError`), never a silently empty gallery.

Names and consent metadata (purpose, consent date, expiry) are stored in clear; expired
entries are ignored when matching. Removal deletes the rows with ``secure_delete`` on and
then ``VACUUM``s the file, so the bytes are gone from the database file and its journal.

Nothing here prints or logs an embedding.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import sqlite3
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError

__all__ = ["Gallery", "Person", "GalleryError", "GalleryKeyError", "default_data_dir", "KEY_ENV",
           "default_gallery_path", "default_key_path"]

KEY_ENV = "VEIL_GALLERY_KEY"
_FORMAT = "veil-gallery-1"
_CHECK = b"veil gallery key check"


class GalleryError(InputError):
    """The gallery cannot be used: missing, empty, corrupt, or a bad request (exit code 3)."""


class GalleryKeyError(GalleryError):
    """No key, or the wrong key, for an encrypted gallery."""


def default_data_dir() -> Path:
    """``$VEIL_HOME``, else the platform's per-user data directory + ``/veil``."""
    if os.environ.get("VEIL_HOME"):
        return Path(os.environ["VEIL_HOME"])
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "veil"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "veil"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "veil"


def default_gallery_path() -> Path:
    return default_data_dir() / "gallery.sqlite"


def default_key_path(gallery: Path | None = None) -> Path:
    """The key file next to the gallery (``gallery.key``)."""
    return (gallery or default_gallery_path()).with_suffix(".key")


@dataclass(frozen=True)
class Person:
    name: str
    purpose: str | None
    consent_date: str | None  # ISO date
    expires: str | None  # ISO date, None = no expiry
    n_embeddings: int

    def expired(self, today: dt.date | None = None) -> bool:
        return self.expires is not None and dt.date.fromisoformat(self.expires) < (today or dt.date.today())


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except Exception:
        key = b""
    if len(key) != 32:
        raise GalleryKeyError(f"the gallery key in {where} is malformed: expected 32 bytes, urlsafe base64 "
                              f"(as written by 'veil gallery add')")
    return key


def load_key(key_file: Path | None, gallery: Path, create: bool = False) -> bytes:
    """The key from ``$VEIL_GALLERY_KEY`` or the key file; ``create`` writes a new key file
    (0600) when there is neither."""
    if os.environ.get(KEY_ENV):
        return _decode_key(os.environ[KEY_ENV], f"${KEY_ENV}")
    path = Path(key_file) if key_file else default_key_path(gallery)
    if path.is_file():
        if os.name == "posix":
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise GalleryKeyError(f"key file {path} is readable by others (mode {mode:04o}); run: chmod 600 {path}")
        return _decode_key(path.read_text(encoding="ascii", errors="replace"), str(path))
    if not create:
        raise GalleryKeyError(f"no gallery key: set ${KEY_ENV} or provide the key file ({path} does not exist)")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(base64.urlsafe_b64encode(key).decode("ascii") + "\n")
    return key


class Gallery:
    """Enrolled people and their (encrypted) embeddings in one SQLite file.

    ``Gallery(path, key_file=None, create=False)``: ``create`` makes the file (and a key
    file, if no key is configured) when it does not exist; otherwise a missing file is an
    error. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: Path | str | None = None, key_file: Path | str | None = None, create: bool = False):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.path = Path(path) if path else default_gallery_path()
        exists = self.path.exists()
        if exists and not self.path.is_file():
            raise GalleryError(f"gallery {self.path} is not a file")
        if not exists and not create:
            raise GalleryError(f"no gallery at {self.path}: enroll people first with 'veil gallery add NAME PHOTO'")
        if exists and self.path.stat().st_size == 0:
            raise GalleryError(f"gallery file {self.path} is empty (0 bytes): remove it, or point --gallery at the right file")
        if exists:
            with open(self.path, "rb") as fh:
                if fh.read(16) != b"SQLite format 3\x00":
                    raise GalleryError(f"gallery file {self.path} is corrupt or not a veil gallery (not an SQLite file)")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = load_key(Path(key_file) if key_file else None, self.path, create=not exists and create)
        self._aead = AESGCM(key)
        if not exists:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None)
            self._db.execute("PRAGMA secure_delete = ON")
            self._db.execute("PRAGMA foreign_keys = ON")
            if not exists:
                self._init_schema()
            self._check()
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise GalleryError(f"gallery file {self.path} is corrupt or not a veil gallery ({exc})") from None

    # -- file ------------------------------------------------------------------------
    def _init_schema(self) -> None:
        nonce = secrets.token_bytes(12)
        check = nonce + self._aead.encrypt(nonce, _CHECK, _FORMAT.encode())
        self._db.executescript("""
            BEGIN;
            CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB);
            CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, purpose TEXT,
                                 consent_date TEXT, expires TEXT, created TEXT NOT NULL);
            CREATE TABLE embeddings (id INTEGER PRIMARY KEY,
                                     person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
                                     embedder TEXT NOT NULL, blob BLOB NOT NULL);
            COMMIT;""")
        self._db.execute("INSERT INTO meta VALUES ('format', ?)", (_FORMAT,))
        self._db.execute("INSERT INTO meta VALUES ('key_check', ?)", (check,))

    def _check(self) -> None:
        from cryptography.exceptions import InvalidTag

        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "people", "embeddings"} <= tables:
            raise GalleryError(f"{self.path} is an SQLite file but not a veil gallery")
        meta = dict(self._db.execute("SELECT key, value FROM meta"))
        if meta.get("format") != _FORMAT or "key_check" not in meta:
            raise GalleryError(f"{self.path}: unsupported gallery format {meta.get('format')!r}")
        blob = bytes(meta["key_check"])
        try:
            ok = self._aead.decrypt(blob[:12], blob[12:], _FORMAT.encode()) == _CHECK
        except InvalidTag:
            ok = False
        if not ok:
            self._close_quietly()
            raise GalleryKeyError(f"wrong key for gallery {self.path}: check ${KEY_ENV} or the key file "
                                  "(the gallery was encrypted with another key)")

    def _close_quietly(self) -> None:
        try:
            self._db.close()
        except Exception:
            pass

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- encryption ------------------------------------------------------------------
    @staticmethod
    def _aad(person_id: int, embedder: str) -> bytes:
        return f"{_FORMAT}|person:{person_id}|{embedder}".encode()

    def _seal(self, person_id: int, embedder: str, vec: np.ndarray) -> bytes:
        nonce = secrets.token_bytes(12)
        data = np.asarray(vec, "<f4").tobytes()
        return nonce + self._aead.encrypt(nonce, data, self._aad(person_id, embedder))

    def _open(self, person_id: int, embedder: str, blob: bytes) -> np.ndarray:
        from cryptography.exceptions import InvalidTag

        try:
            data = self._aead.decrypt(blob[:12], blob[12:], self._aad(person_id, embedder))
        except InvalidTag:
            raise GalleryError(f"gallery {self.path}: an embedding failed its integrity check (tampered or corrupt)") from None
        return np.frombuffer(data, "<f4").astype(np.float32)

    # -- people ----------------------------------------------------------------------
    def _id(self, name: str) -> int:
        row = self._db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise GalleryError(f"nobody is enrolled as {name!r} in {self.path}" + self._known_hint())
        return int(row[0])

    def _known_hint(self) -> str:
        names = self.names()
        return f"; enrolled: {', '.join(names)}" if names else "; the gallery is empty"

    def names(self, include_expired: bool = True) -> list[str]:
        return [p.name for p in self.people() if include_expired or not p.expired()]

    def __contains__(self, name: str) -> bool:
        return self._db.execute("SELECT 1 FROM people WHERE name = ?", (name,)).fetchone() is not None

    def people(self) -> list[Person]:
        rows = self._db.execute("""SELECT p.name, p.purpose, p.consent_date, p.expires, COUNT(e.id)
                                   FROM people p LEFT JOIN embeddings e ON e.person_id = p.id
                                   GROUP BY p.id ORDER BY p.name""").fetchall()
        return [Person(*r) for r in rows]

    def add(self, name: str, embeddings: np.ndarray, embedder: str, purpose: str | None = None,
            consent_date: dt.date | None = None, expires: dt.date | None = None) -> Person:
        """Enroll a new person with one or more embeddings (see :func:`veil.identify.enroll`)."""
        name = _check_name(name)
        if name in self:
            raise GalleryError(f"{name!r} is already enrolled: two people cannot share a name "
                               f"(use 'veil gallery add --append' to add photos of the same person)")
        consent = (consent_date or dt.date.today()).isoformat()
        if expires is not None and expires < dt.date.today():
            raise ConfigError(f"--expires {expires.isoformat()} is in the past")
        self._db.execute("BEGIN")
        try:
            cur = self._db.execute("INSERT INTO people (name, purpose, consent_date, expires, created) VALUES (?,?,?,?,?)",
                                   (name, purpose, consent, expires.isoformat() if expires else None,
                                    dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")))
            self._insert(int(cur.lastrowid), embedder, embeddings)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return next(p for p in self.people() if p.name == name)

    def enroll(self, name: str, photos, *, purpose: str | None = None, expires: dt.date | None = None,
               consent_date: dt.date | None = None, append: bool = False, embedder=None, detect=None):
        """Enroll ``name`` from photos (checked; see :func:`veil.identify.enroll.enroll`).
        Returns ``(Person, warnings)``."""
        from .embedder import build_embedder
        from .enroll import enroll

        return enroll(self, name, photos, embedder or build_embedder(), purpose=purpose, expires=expires,
                      consent_date=consent_date, append=append, detect=detect)

    def append(self, name: str, embeddings: np.ndarray, embedder: str) -> None:
        pid = self._id(name)
        self._db.execute("BEGIN")
        try:
            self._insert(pid, embedder, embeddings)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _insert(self, pid: int, embedder: str, embeddings: np.ndarray) -> None:
        for vec in np.atleast_2d(embeddings):
            self._db.execute("INSERT INTO embeddings (person_id, embedder, blob) VALUES (?,?,?)",
                             (pid, embedder, self._seal(pid, embedder, vec)))

    def rename(self, old: str, new: str) -> None:
        new = _check_name(new)
        pid = self._id(old)
        if new in self:
            raise GalleryError(f"{new!r} is already enrolled: two people cannot share a name")
        self._db.execute("UPDATE people SET name = ? WHERE id = ?", (new, pid))

    def remove(self, name: str) -> None:
        """Delete a person and their embeddings for real: secure_delete, then VACUUM."""
        pid = self._id(name)
        self._db.execute("BEGIN")
        self._db.execute("DELETE FROM embeddings WHERE person_id = ?", (pid,))
        self._db.execute("DELETE FROM people WHERE id = ?", (pid,))
        self._db.execute("COMMIT")
        self._db.execute("VACUUM")

    def embeddings(self, embedder: str, names: list[str] | None = None, today: dt.date | None = None,
                   ) -> tuple[list[str], np.ndarray]:
        """Decrypted embeddings of the embedder's model, one row per stored vector, with the
        owner's name; expired people are left out. ``names`` restricts to those people."""
        rows = self._db.execute("""SELECT p.id, p.name, p.expires, e.blob FROM embeddings e
                                   JOIN people p ON p.id = e.person_id WHERE e.embedder = ?
                                   ORDER BY p.name, e.id""", (embedder,)).fetchall()
        today = today or dt.date.today()
        out_names, vecs = [], []
        for pid, name, expires, blob in rows:
            if expires is not None and dt.date.fromisoformat(expires) < today:
                continue
            if names is not None and name not in names:
                continue
            out_names.append(name)
            vecs.append(self._open(pid, embedder, bytes(blob)))
        return out_names, (np.stack(vecs) if vecs else np.zeros((0, 0), np.float32))


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
        raise ConfigError(f"invalid name {name!r}: 1-200 printable characters")
    return name
