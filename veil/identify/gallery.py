"""The gallery of enrolled people: SQLite, embeddings encrypted at rest.

Embeddings are biometric data. In the gallery file they are encrypted with AES-256-GCM
(``cryptography``), each bound (associated data) to its person's row id and the embedder
name, so a blob copied to another person does not decrypt. The key (32 random bytes,
urlsafe base64) comes from ``$VEIL_GALLERY_KEY`` or from a key file that must not be
readable by group or others (0600); the first enrolment creates the key file when there
is none. A known token encrypted with the key is stored in the file, so a wrong key is an
error (:class:`GalleryKeyError`), never a silently empty gallery.

Names and consent metadata (purpose, consent date, expiry) are stored in clear, so that
``veil gallery list`` can show them, but each person's row carries a seal: an HMAC-SHA256,
under a key derived from the gallery key, of the row id, name, purpose, consent date, expiry
and creation time. Whoever can write the file but lacks the key cannot extend a consent or
swap two names (so that ``--spare A`` spares B): a row whose seal does not verify stops every
use of the gallery with an error. Expired entries are ignored when matching. Removal
deletes the rows with ``secure_delete`` on and then ``VACUUM``s the file, so the bytes are
gone from the database file and its journal. (Replacing the whole file with an older copy
cannot be detected from the file alone.)

Creation is safe against a concurrent creator (two ``veil gallery add`` on a new gallery):
the key file is published atomically (written under a temporary name, then hard-linked into
place, so the loser reads the winner's key) and the schema is created under an SQLite write
lock by whichever process takes it first.

Galleries of format ``veil-gallery-1`` (no seals) are refused with a one-line error until
``veil gallery migrate`` has shown their people to the user and sealed them.

Nothing here prints or logs an embedding.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import stat
from pathlib import Path

import numpy as np

from ..dirs import data_dir
from ..errors import ConfigError
from .people import GalleryError, GalleryKeyError, Person

__all__ = ["Gallery", "Person", "GalleryError", "GalleryKeyError", "KEY_ENV",
           "default_gallery_path", "default_key_path"]

KEY_ENV = "VEIL_GALLERY_KEY"
_FORMAT = "veil-gallery-2"
_OLD_FORMATS = ("veil-gallery-1",)
#: associated-data prefix of the embeddings and the key check (unchanged since format 1)
_AAD = "veil-gallery-1"
_CHECK = b"veil gallery key check"
_BUSY_S = 30.0  # wait this long for another process's write lock


def default_gallery_path() -> Path:
    return data_dir() / "gallery.sqlite"


def default_key_path(gallery: Path | None = None) -> Path:
    """The key file next to the gallery (``gallery.key``)."""
    return (gallery or default_gallery_path()).with_suffix(".key")


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
    return _publish_key(path)


def _publish_key(path: Path) -> bytes:
    """Write a new key file atomically, or return the key of a file another process
    published first: the key is written in full under a temporary name, then hard-linked
    to ``path`` (which fails if ``path`` exists), so nobody ever reads a half-written key."""
    key = secrets.token_bytes(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(base64.urlsafe_b64encode(key).decode("ascii") + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:  # another process won the race: use its key
            return _decode_key(path.read_text(encoding="ascii", errors="replace"), str(path))
    finally:
        tmp.unlink(missing_ok=True)
    return key


class Gallery:
    """Enrolled people and their (encrypted) embeddings in one SQLite file.

    ``Gallery(path, key_file=None, create=False)``: ``create`` makes the file (and a key
    file, if no key is configured) when it does not exist; otherwise a missing file is an
    error. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: Path | str | None = None, key_file: Path | str | None = None, create: bool = False,
                 *, migrate: bool = False):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._migrating = migrate
        self.path = Path(path) if path else default_gallery_path()
        exists = self.path.exists()
        if exists and not self.path.is_file():
            raise GalleryError(f"gallery {self.path} is not a file")
        if not exists and not create:
            raise GalleryError(f"no gallery at {self.path}: enroll people first with 'veil gallery add NAME PHOTO'")
        # a 0-byte file may be a gallery another process is creating right now
        new = not exists or (create and self.path.stat().st_size == 0)
        if exists and not new and self.path.stat().st_size == 0:
            raise GalleryError(f"gallery file {self.path} is empty (0 bytes): remove it, or point --gallery at the right file")
        if exists and not new:
            with open(self.path, "rb") as fh:
                if fh.read(16) != b"SQLite format 3\x00":
                    raise GalleryError(f"gallery file {self.path} is corrupt or not a veil gallery (not an SQLite file)")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = load_key(Path(key_file) if key_file else None, self.path, create=new)
        self._aead = AESGCM(key)
        self._mac_key = _derive(key, b"veil gallery consent seal")
        if new:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))  # 0600 before SQLite writes to it
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, timeout=_BUSY_S)
            self._db.execute("PRAGMA secure_delete = ON")
            self._db.execute("PRAGMA foreign_keys = ON")
            if new:
                self._init_schema()
            self._check()
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise GalleryError(f"gallery file {self.path} is corrupt or not a veil gallery ({exc})") from None

    # -- file ------------------------------------------------------------------------
    def _init_schema(self) -> None:
        """Create the tables, unless a concurrent creator already has (under its write lock)."""
        nonce = secrets.token_bytes(12)
        check = nonce + self._aead.encrypt(nonce, _CHECK, _AAD.encode())
        self._db.execute("BEGIN IMMEDIATE")  # one creator at a time; the others wait, then find the tables
        try:
            if self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() is None:
                self._db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB)")
                self._db.execute("""CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, purpose TEXT,
                                    consent_date TEXT, expires TEXT, created TEXT NOT NULL, seal BLOB)""")
                self._db.execute("""CREATE TABLE embeddings (id INTEGER PRIMARY KEY,
                                    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
                                    embedder TEXT NOT NULL, blob BLOB NOT NULL)""")
                self._db.execute("INSERT INTO meta VALUES ('format', ?)", (_FORMAT,))
                self._db.execute("INSERT INTO meta VALUES ('key_check', ?)", (check,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _check(self) -> None:
        from cryptography.exceptions import InvalidTag

        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "people", "embeddings"} <= tables:
            raise GalleryError(f"{self.path} is an SQLite file but not a veil gallery")
        meta = dict(self._db.execute("SELECT key, value FROM meta"))
        fmt = meta.get("format")
        if fmt not in (_FORMAT, *_OLD_FORMATS) or "key_check" not in meta:
            raise GalleryError(f"{self.path}: unsupported gallery format {fmt!r}")
        blob = bytes(meta["key_check"])
        try:
            ok = self._aead.decrypt(blob[:12], blob[12:], _AAD.encode()) == _CHECK
        except InvalidTag:
            ok = False
        if not ok:
            self._close_quietly()
            raise GalleryKeyError(f"wrong key for gallery {self.path}: check ${KEY_ENV} or the key file "
                                  "(the gallery was encrypted with another key)")
        self.format = fmt
        if fmt != _FORMAT and not self._migrating:
            self._close_quietly()
            raise GalleryError(f"gallery {self.path} has the old format {fmt} (consent records not sealed): run "
                               f"'veil gallery migrate --gallery {self.path}' to check its people and seal them")

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
        return f"{_AAD}|person:{person_id}|{embedder}".encode()

    def _seal_row(self, pid: int, name: str, purpose, consent_date, expires, created) -> bytes:
        """The seal of a person's consent record (see the module doc)."""
        msg = json.dumps([_FORMAT, "person", int(pid), name, purpose, consent_date, expires, created],
                         ensure_ascii=False, separators=(",", ":")).encode()
        return hmac.new(self._mac_key, msg, hashlib.sha256).digest()

    def _rows(self) -> list[tuple]:
        """``(id, name, purpose, consent_date, expires, n_embeddings)`` of every person, each
        seal verified: a record edited without the key stops here."""
        rows = self._db.execute("""SELECT p.id, p.name, p.purpose, p.consent_date, p.expires, p.created, p.seal,
                                          (SELECT COUNT(*) FROM embeddings e WHERE e.person_id = p.id)
                                   FROM people p ORDER BY p.name""").fetchall()
        out = []
        for pid, name, purpose, consent, expires, created, seal, n in rows:
            good = self._seal_row(pid, name, purpose, consent, expires, created)
            if seal is None or not hmac.compare_digest(bytes(seal), good):
                raise GalleryError(f"gallery {self.path}: the consent record of person #{pid} failed its integrity check "
                                   "(edited without the key, or corrupt); refusing to use the gallery")
            out.append((pid, name, purpose, consent, expires, n))
        return out

    def _reseal(self, pid: int) -> None:
        name, purpose, consent, expires, created = self._db.execute(
            "SELECT name, purpose, consent_date, expires, created FROM people WHERE id = ?", (pid,)).fetchone()
        self._db.execute("UPDATE people SET seal = ? WHERE id = ?",
                         (self._seal_row(pid, name, purpose, consent, expires, created), pid))

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
        """The row id of ``name``, after verifying every consent record (rename and append
        must never re-seal a record edited without the key)."""
        for pid, n, *_ in self._rows():
            if n == name:
                return int(pid)
        raise GalleryError(f"nobody is enrolled as {name!r} in {self.path}" + self._known_hint())

    def _known_hint(self) -> str:
        names = self.names()
        return f"; enrolled: {', '.join(names)}" if names else "; the gallery is empty"

    def names(self, include_expired: bool = True) -> list[str]:
        return [p.name for p in self.people() if include_expired or not p.expired()]

    def __contains__(self, name: str) -> bool:
        return self._db.execute("SELECT 1 FROM people WHERE name = ?", (name,)).fetchone() is not None

    def people(self) -> list[Person]:
        return [Person(*r[1:]) for r in self._rows()]

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
        self._db.execute("BEGIN IMMEDIATE")
        try:
            cur = self._db.execute("INSERT INTO people (name, purpose, consent_date, expires, created) VALUES (?,?,?,?,?)",
                                   (name, purpose, consent, expires.isoformat() if expires else None,
                                    dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")))
            assert cur.lastrowid is not None  # set by an INSERT
            pid = int(cur.lastrowid)
            self._reseal(pid)
            self._insert(pid, embedder, embeddings)
            self._db.execute("COMMIT")
        except sqlite3.IntegrityError:  # enrolled by a concurrent 'gallery add' since the check above
            self._db.execute("ROLLBACK")
            raise GalleryError(f"{name!r} is already enrolled: two people cannot share a name") from None
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
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("UPDATE people SET name = ? WHERE id = ?", (new, pid))
            self._reseal(pid)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def migrate(self) -> list[Person]:
        """Seal the consent records of a format-1 gallery (open it with ``migrate=True``);
        the caller shows the people to the user, who checks them. Returns them."""
        if self.format == _FORMAT:
            return self.people()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            cols = {r[1] for r in self._db.execute("PRAGMA table_info(people)")}
            if "seal" not in cols:
                self._db.execute("ALTER TABLE people ADD COLUMN seal BLOB")
            for (pid,) in self._db.execute("SELECT id FROM people").fetchall():
                self._reseal(int(pid))
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'format'", (_FORMAT,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self.format = _FORMAT
        return self.people()

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
        people = {r[0]: r for r in self._rows()}  # verified consent records
        rows = self._db.execute("""SELECT person_id, blob FROM embeddings WHERE embedder = ?
                                   ORDER BY person_id, id""", (embedder,)).fetchall()
        rows = sorted((r for r in rows if r[0] in people), key=lambda r: people[r[0]][1])  # by name (stable)
        today = today or dt.date.today()
        out_names, vecs = [], []
        for pid, blob in rows:
            _, name, _, _, expires, _ = people[pid]
            if expires is not None and dt.date.fromisoformat(expires) < today:
                continue
            if names is not None and name not in names:
                continue
            out_names.append(name)
            vecs.append(self._open(pid, embedder, bytes(blob)))
        return out_names, (np.stack(vecs) if vecs else np.zeros((0, 0), np.float32))


def _derive(key: bytes, purpose: bytes) -> bytes:
    """A sub-key for one purpose (HKDF-SHA256), so the AES key is never used as a MAC key."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(key)


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
        raise ConfigError(f"invalid name {name!r}: 1-200 printable characters")
    return name
