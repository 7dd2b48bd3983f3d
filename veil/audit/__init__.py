"""Governance: the hash-chained audit log, its signing key, recorded runs and the signed
provenance of outputs. See docs/design.md ("Audit log and provenance")."""

from .keys import PublicKey, SigningKey, load_key, load_public_key
from .log import AuditLog, ChainReport, Checkpoint, Event, current_actor, verify_chain
from .provenance import verify_output, write_manifest
from .runs import current_run, person_ref, record_event, recorded_run

__all__ = ["AuditLog", "ChainReport", "Checkpoint", "Event", "PublicKey", "SigningKey", "current_actor", "current_run",
           "load_key", "load_public_key", "person_ref", "record_event", "recorded_run", "verify_chain", "verify_output",
           "write_manifest"]
