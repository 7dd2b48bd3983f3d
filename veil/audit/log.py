"""The audit log: append-only, hash-chained events in SQLite, with a signed checkpoint.

Each event stores ``hash = sha256(canonical JSON of seq, time, actor, kind, body, prev)``
where ``prev`` is the previous event's hash, so editing, deleting, inserting or re-ordering
any event breaks a link that :func:`verify_chain` reports. An attacker who rewrites the whole
tail consistently is caught by the checkpoint: the head of the chain (last seq and hash) is
signed with the data directory's Ed25519 key in the same transaction as every append. Cutting
events off the end leaves a checkpoint that names an event that is gone. Rolling the whole
file back to an older copy is only visible against a checkpoint kept elsewhere: every export
carries one, and ``veil audit verify --anchor EXPORT`` checks the log still extends it.

Writers take SQLite's write lock before reading the head (``BEGIN IMMEDIATE``), so two
processes appending at once serialize and the chain stays linear; a writer killed mid-append
leaves a rolled-back transaction, never half an event; a full disk fails the append with an
:class:`~veil.errors.AuditError` and leaves the chain as it was. Nothing here stores
embeddings, pixels or faces: callers pass facts (hashes, counts, settings).
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..dirs import data_dir
from ..errors import AuditError
from .keys import PublicKey, SigningKey, load_key

__all__ = ["AuditLog", "Event", "Checkpoint", "ChainReport", "verify_chain", "current_actor", "canonical",
           "default_log_path", "GENESIS"]

GENESIS = "0" * 64
SCHEMA_VERSION = 1
LOG_FILE = "audit.sqlite"
_EVENT_SIG = b"veil-audit-checkpoint:"
_BASE_SIG = b"veil-audit-base:"


def default_log_path() -> Path:
    return data_dir() / LOG_FILE


def canonical(obj: Any) -> bytes:
    """The one byte form that is hashed and signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def current_actor() -> str:
    """Who acts: ``$VEIL_ACTOR`` when a service sets it (e.g. ``token:ID``), else the OS user."""
    if os.environ.get("VEIL_ACTOR"):
        return os.environ["VEIL_ACTOR"]
    try:
        return f"user:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "user:unknown"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Event:
    seq: int
    ts: str
    actor: str
    kind: str
    body: dict[str, Any]
    prev: str
    hash: str

    def content(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "actor": self.actor, "kind": self.kind, "body": self.body, "prev": self.prev}

    def computed_hash(self) -> str:
        return hashlib.sha256(canonical(self.content())).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        return {**self.content(), "hash": self.hash}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Event":
        return cls(int(d["seq"]), d["ts"], d["actor"], d["kind"], d["body"], d["prev"], d["hash"])


@dataclass(frozen=True)
class Checkpoint:
    """The signed head of the chain: the last event's seq and hash."""

    seq: int
    hash: str
    ts: str
    key_id: str
    public_key: str
    signature: str

    @staticmethod
    def message(seq: int, hash_: str) -> bytes:
        return _EVENT_SIG + f"{seq}:{hash_}".encode()

    def valid(self, public: PublicKey) -> bool:
        return public.verify(self.signature, self.message(self.seq, self.hash))

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Checkpoint":
        return cls(int(d["seq"]), d["hash"], d["ts"], d["key_id"], d["public_key"], d["signature"])


@dataclass
class ChainReport:
    """What :func:`verify_chain` found; ``ok`` only when ``problems`` is empty."""

    events: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    key_id: str | None = None
    checkpoint_seq: int | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **self.__dict__}


def verify_chain(events: Iterable[Event], checkpoint: Checkpoint | None, public: PublicKey | None,
                 start_prev: str | None = GENESIS, expect_first_seq: int | None = 1,
                 covers_head: bool = True) -> ChainReport:
    """Check hashes, links, sequence numbers and the signed checkpoint of a run of events.

    ``start_prev``/``expect_first_seq`` describe where the run starts (the genesis for a whole
    log; ``None`` for an export that begins mid-chain). ``covers_head``: the run should end at
    the checkpoint (a whole log does; an export with ``--until`` need not).
    """
    rep = ChainReport()
    prev_hash, prev_seq = start_prev, (expect_first_seq - 1 if expect_first_seq is not None else None)
    last: Event | None = None
    for ev in events:
        rep.events += 1
        if rep.first_seq is None:
            rep.first_seq = ev.seq
        if prev_seq is not None and ev.seq != prev_seq + 1:
            if ev.seq <= prev_seq:
                rep.problems.append(f"event {ev.seq}: out of order (after event {prev_seq}): re-ordered or inserted")
            else:
                gone = f"{prev_seq + 1}" if ev.seq == prev_seq + 2 else f"{prev_seq + 1}-{ev.seq - 1}"
                rep.problems.append(f"event(s) {gone} missing: deleted")
        if ev.computed_hash() != ev.hash:
            rep.problems.append(f"event {ev.seq}: content does not match its hash: edited")
        if prev_hash is not None and ev.prev != prev_hash:
            rep.problems.append(f"event {ev.seq}: does not link to the event before it: "
                                "an event before it was edited, deleted, inserted or re-ordered")
        prev_hash, prev_seq, last = ev.hash, ev.seq, ev
    rep.last_seq = last.seq if last else None
    if checkpoint is None:
        if rep.events:
            rep.problems.append("no signed checkpoint: the log's head was removed or never signed")
        return rep
    rep.checkpoint_seq, rep.key_id = checkpoint.seq, checkpoint.key_id
    if public is None:
        public = PublicKey.from_hex(checkpoint.public_key)
        rep.notes.append(f"checkpoint checked against the public key stored in the log ({checkpoint.key_id}), "
                         "not an independent copy: pass --public-key to check against yours")
    elif public.key_id != checkpoint.key_id or public.hex != checkpoint.public_key:
        rep.problems.append(f"checkpoint signed by key {checkpoint.key_id}, not by the expected key {public.key_id}")
        return rep
    if not checkpoint.valid(public):
        rep.problems.append(f"checkpoint (event {checkpoint.seq}) has an invalid signature: the head was forged or altered")
    if covers_head:
        if last is not None and last.seq == checkpoint.seq and last.hash != checkpoint.hash:
            rep.problems.append(f"event {last.seq} differs from the signed checkpoint: it was rewritten")
        elif last is None or last.seq != checkpoint.seq:
            where = f"the log ends at event {last.seq}" if last else "the log has no events"
            rep.problems.append(f"signed checkpoint names event {checkpoint.seq}, but {where}: "
                                "events were deleted from, or appended past, the signed head")
    return rep


class AuditLog:
    """The audit log at ``path`` (default ``audit.sqlite`` in veil's data directory).

    Appending needs the signing key (``key_path``, default ``signing.key`` beside it, created
    with the log); reading and verifying need only the file.
    """

    def __init__(self, path: Path | None = None, key_path: Path | None = None, busy_timeout_s: float = 60.0):
        self.path = Path(path) if path is not None else default_log_path()
        self.key_path = key_path
        self.busy_timeout_s = busy_timeout_s
        self._key: SigningKey | None = None

    # -- connection ---------------------------------------------------------------------
    def _connect(self, create: bool) -> sqlite3.Connection:
        if not create and not self.path.is_file():
            raise AuditError(f"no audit log at {self.path} (nothing has been recorded yet)")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                if not self.path.exists():  # the log names files and people's references: owner only
                    os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            con = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise AuditError(f"cannot open audit log {self.path}: {exc}") from None
        try:
            con.execute("PRAGMA synchronous=FULL")
            if create:
                con.execute("BEGIN IMMEDIATE")
                con.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                con.execute("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, "
                            "actor TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL, prev TEXT NOT NULL, "
                            "hash TEXT NOT NULL)")
                con.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                con.execute("COMMIT")
            schema = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            con.close()
            raise self._error("is unreadable (corrupted, or not a veil audit log)", exc) from None
        if schema is None or schema[0] != str(SCHEMA_VERSION):
            con.close()
            raise AuditError(f"audit log {self.path} has schema {schema and schema[0]!r}; this veil reads {SCHEMA_VERSION}")
        return con

    def _error(self, what: str, exc: BaseException) -> AuditError:
        msg = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and ("full" in msg or "disk" in msg):
            return AuditError(f"audit log {self.path}: disk full, the event was NOT recorded ({msg}); "
                              "free space and run again")
        if isinstance(exc, sqlite3.OperationalError) and "locked" in msg:
            return AuditError(f"audit log {self.path} stayed locked by another writer for {self.busy_timeout_s:.0f} s; "
                              "the event was NOT recorded")
        return AuditError(f"audit log {self.path} {what}: {msg}; keep the file for investigation "
                          "(`veil audit verify` says what is wrong)")

    def signing_key(self) -> SigningKey:
        if self._key is None:
            self._key = load_key(self.key_path or self.path.with_name("signing.key"), create=True)
        return self._key

    # -- writing --------------------------------------------------------------------------
    def append(self, kind: str, body: dict[str, Any], actor: str | None = None) -> Event:
        """Add one event and re-sign the head, atomically; returns the stored event."""
        try:
            text = canonical(body).decode("utf-8")
        except (TypeError, ValueError) as exc:
            raise AuditError(f"audit event {kind!r} is not JSON-serializable: {exc}") from None
        return self._write(lambda con: self._append_locked(con, kind, json.loads(text), actor or current_actor()),
                           "could not be written")

    def _write(self, work, what: str, create: bool = True):
        """Run ``work(con)`` in one ``BEGIN IMMEDIATE`` transaction: committed if it returns,
        rolled back on any exception (a killed process rolls back too)."""
        con = self._connect(create=create)
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                result = work(con)
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise self._error(what, exc) from None
        finally:
            con.close()
        return result

    def _append_locked(self, con: sqlite3.Connection, kind: str, body: dict[str, Any], actor: str) -> Event:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        last_seq, last_hash, key = self._check_head(con, meta)
        seq, prev = (last_seq + 1, last_hash) if last_seq is not None and last_hash is not None else (1, GENESIS)
        stub = Event(seq, _now(), actor, kind, body, prev, "")
        event = Event(**{**stub.__dict__, "hash": stub.computed_hash()})
        con.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (event.seq, event.ts, event.actor, event.kind, canonical(event.body).decode(), event.prev, event.hash))
        cp = Checkpoint(event.seq, event.hash, event.ts, key.key_id, key.public.hex,
                        key.sign(Checkpoint.message(event.seq, event.hash)))
        con.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                        [("key_id", key.key_id), ("public_key", key.public.hex), ("checkpoint", json.dumps(cp.as_dict()))])
        return event

    def _check_head(self, con: sqlite3.Connection, meta: dict[str, str]) -> tuple[int | None, str | None, SigningKey]:
        """The chain's head (seq, hash) after checking it against the signed checkpoint, and the
        key; refuses (AuditError) to build on a head that does not match."""
        head = con.execute("SELECT seq, ts, actor, kind, body, prev, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        cp, base = _checkpoint(meta), _base(meta)
        if (head is not None or base is not None) and "key_id" not in meta:
            raise AuditError(f"audit log {self.path} has events but no signing key recorded: not a log veil wrote")
        key = self._key_for(meta, has_events=head is not None or cp is not None)
        if head is not None:
            last = _row_event(head)
            last_seq, last_hash, intact = last.seq, last.hash, last.computed_hash() == last.hash
        elif base is not None:  # every event was pruned: the chain goes on from the signed base
            last_seq, last_hash, intact = base["seq"], base["hash"], _base_valid(base, key.public)
        else:
            return None, None, key
        if not intact or cp is None or cp.seq != last_seq or cp.hash != last_hash or not cp.valid(key.public):
            raise AuditError(f"audit log {self.path}: its head (event {last_seq}) does not match the signed "
                             "checkpoint; nothing is appended to a tampered log (run `veil audit verify`)")
        return last_seq, last_hash, key

    def prune(self, before: dt.datetime, min_days: int, now: dt.datetime | None = None) -> dict[str, Any] | None:
        """Delete the events older than ``before`` (never younger than ``min_days``), sign the
        last deleted event's hash as the chain's base, and record an ``audit.pruned`` event."""
        now = now or dt.datetime.now(dt.timezone.utc)
        if before > now - dt.timedelta(days=min_days):
            raise AuditError(f"audit events are kept at least {min_days} days: cannot prune events after "
                             f"{(now - dt.timedelta(days=min_days)).date()}")
        cutoff = _as_utc(before.isoformat())

        def work(con: sqlite3.Connection) -> dict[str, Any] | None:
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            _, _, key = self._check_head(con, meta)
            rows = con.execute("SELECT seq, hash, ts FROM events WHERE ts < ? ORDER BY seq", (cutoff,)).fetchall()
            if not rows:
                return None
            k, h, ts = rows[-1]
            con.execute("DELETE FROM events WHERE seq <= ?", (k,))
            base = {"seq": k, "hash": h, "last_ts": ts, "pruned": _now(), "key_id": key.key_id}
            base["signature"] = key.sign(_BASE_SIG + f"{k}:{h}".encode())
            con.execute("INSERT OR REPLACE INTO meta VALUES ('base', ?)", (json.dumps(base),))
            facts = {"up_to_seq": k, "up_to_ts": ts, "events": len(rows), "base_hash": h, "cutoff": cutoff}
            self._append_locked(con, "audit.pruned", facts, current_actor())
            return facts

        return self._write(work, "could not be pruned", create=False)

    def _key_for(self, meta: dict[str, str], has_events: bool) -> SigningKey:
        path = Path(self.key_path or self.path.with_name("signing.key"))
        if has_events and not path.exists():
            raise AuditError(f"signing key {path} is missing, but the audit log {self.path} is signed by key "
                             f"{meta.get('key_id')}: restore the key from its backup (a new key would break the record)")
        key = self.signing_key()
        if "key_id" in meta and meta["key_id"] != key.key_id:
            raise AuditError(f"signing key {path} (id {key.key_id}) is not the key that signs the audit log "
                             f"{self.path} (id {meta['key_id']}): restore the right key")
        return key

    # -- reading --------------------------------------------------------------------------
    def events(self, since: str | None = None, until: str | None = None, kinds: Iterable[str] | None = None) -> list[Event]:
        """Events in seq order, optionally those with ``since <= time < until`` (ISO dates or times)."""
        con = self._connect(create=False)
        try:
            rows = con.execute("SELECT seq, ts, actor, kind, body, prev, hash FROM events ORDER BY seq").fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._error("is unreadable", exc) from None
        finally:
            con.close()
        out = [_row_event(r) for r in rows]
        if since:
            out = [e for e in out if e.ts >= _as_utc(since)]
        if until:
            out = [e for e in out if e.ts < _as_utc(until)]
        if kinds:
            wanted = tuple(kinds)
            out = [e for e in out if e.kind.startswith(wanted)]
        return out

    def _meta(self) -> dict[str, str]:
        con = self._connect(create=False)
        try:
            return dict(con.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise self._error("is unreadable", exc) from None
        finally:
            con.close()

    def checkpoint(self) -> Checkpoint | None:
        return _checkpoint(self._meta())

    def verify(self, public: PublicKey | None = None) -> ChainReport:
        """Check the whole log (see :func:`verify_chain`). Uses the local signing key's public
        half when it exists, else the key stored in the log (and says so)."""
        try:
            events = self.events()
            meta = self._meta()
        except AuditError as exc:
            return ChainReport(problems=[str(exc)])
        if public is None:
            path = Path(self.key_path or self.path.with_name("signing.key"))
            if path.exists():
                public = load_key(path, create=False).public
        cp, base = _checkpoint(meta), _base(meta)
        if base is None:
            return verify_chain(events, cp, public)
        rep = verify_chain(events, cp, public, start_prev=base["hash"], expect_first_seq=base["seq"] + 1)
        if not _base_valid(base, public or PublicKey.from_hex(meta.get("public_key", ""))):
            rep.problems.append(f"the signed base (events up to {base['seq']} pruned) has an invalid signature")
        rep.notes.append(f"events up to {base['seq']} (until {base['last_ts'][:10]}) were pruned by retention on "
                         f"{base['pruned'][:10]}; the chain goes on from their signed hash")
        return rep


def _row_event(row) -> Event:
    seq, ts, actor, kind, body, prev, hash_ = row
    try:
        parsed = json.loads(body)
    except (TypeError, ValueError):
        parsed = {"_unparseable_body": str(body)}
    return Event(int(seq), ts, actor, kind, parsed, prev, hash_)


def _checkpoint(meta: dict[str, str]) -> Checkpoint | None:
    if "checkpoint" not in meta:
        return None
    try:
        return Checkpoint.from_dict(json.loads(meta["checkpoint"]))
    except (ValueError, KeyError, TypeError):
        return None


def _base(meta: dict[str, str]) -> dict[str, Any] | None:
    if "base" not in meta:
        return None
    try:
        base = json.loads(meta["base"])
        int(base["seq"]), str(base["hash"]), str(base["signature"])
        return base
    except (ValueError, KeyError, TypeError):
        return {"seq": 0, "hash": "", "signature": "", "last_ts": "", "pruned": ""}  # fails _base_valid


def _base_valid(base: dict[str, Any], public: PublicKey) -> bool:
    return public.verify(str(base.get("signature", "")), _BASE_SIG + f"{base['seq']}:{base['hash']}".encode())


def _as_utc(text: str) -> str:
    """An ISO date or time as the UTC timestamp string events are compared with."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise AuditError(f"expected a date YYYY-MM-DD or an ISO time, got {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")
