"""``veil gallery``: enroll, list, rename and remove the people that ``--spare`` / ``--only`` name.

Embeddings never leave the encrypted gallery file: these commands print names, consent
metadata and counts only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import List, Optional

import typer

from ..audit import person_ref, record_event
from ..errors import ConfigError
from .common import one_line_errors
from .progress import console, err_console

gallery_app = typer.Typer(help="Manage the gallery of enrolled people (for --spare / --only).", no_args_is_help=True)

_GALLERY = typer.Option(None, "--gallery", help="Gallery file (default: gallery.sqlite in the user's data directory).")
_KEY = typer.Option(None, "--key-file", help="Key file, mode 0600 (default: next to the gallery; $VEIL_GALLERY_KEY wins).")


def _date(value: Optional[str], flag: str) -> Optional[dt.date]:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{flag} {value!r}: expected a date YYYY-MM-DD") from None


def _open(gallery: Optional[Path], key_file: Optional[Path], create: bool = False):
    """The gallery, with expired consents purged first (each an audit event)."""
    from ..audit.retention import purge_expired_consents
    from ..identify import Gallery

    g = Gallery(gallery, key_file, create=create)
    try:
        purge_expired_consents(g)
    except BaseException:
        g.close()
        raise
    return g


@gallery_app.command("add")
@one_line_errors
def add(
    name: str = typer.Argument(..., help="The person's name (unique in the gallery)."),
    photos: List[Path] = typer.Argument(..., help="One or more photos with exactly this person's face, or a short video "
                                                  "of the person alone (sharp, frontal, varied frames are picked)."),
    purpose: Optional[str] = typer.Option(None, help="Purpose of the consent, e.g. 'interview 2024-05'."),
    expires: Optional[str] = typer.Option(None, help="Consent expiry date YYYY-MM-DD; expired entries are ignored."),
    consent_date: Optional[str] = typer.Option(None, help="Date consent was given, YYYY-MM-DD (default today)."),
    append: bool = typer.Option(False, "--append", help="Add photos to someone already enrolled (they must match)."),
    gallery: Optional[Path] = _GALLERY,
    key_file: Optional[Path] = _KEY,
) -> None:
    """Enroll a person from photos (one clear face each) or a short video."""
    import os

    from ..identify.gallery import KEY_ENV, default_gallery_path, default_key_path

    path = gallery or default_gallery_path()
    new_key = not path.exists() and not os.environ.get(KEY_ENV) and not (key_file or default_key_path(path)).exists()
    with _open(gallery, key_file, create=True) as g:
        person, warnings = g.enroll(name, photos, purpose=purpose, expires=_date(expires, "--expires"),
                                    consent_date=_date(consent_date, "--consent-date"), append=append)
    if new_key:
        err_console.print(f"veil: created gallery key {key_file or default_key_path(path)} (mode 0600): back it up; "
                          "without it the gallery cannot be read", markup=False, highlight=False)
    record_event("gallery.enrol", {"person": person_ref(person.name), "photos": person.n_embeddings, "append": append,
                                   "purpose_given": bool(purpose), "consent_date": person.consent_date,
                                   "expires": person.expires, "gallery": str(path)})
    for w in warnings:
        err_console.print(f"veil: warning: {w}", markup=False, highlight=False)
    console.print(f"enrolled {person.name!r} ({person.n_embeddings} view(s)) in {path}", markup=False, highlight=False)


@gallery_app.command("list")
@one_line_errors
def list_(gallery: Optional[Path] = _GALLERY, key_file: Optional[Path] = _KEY) -> None:
    """Enrolled people with their consent metadata (never their embeddings)."""
    with _open(gallery, key_file) as g:
        people = g.people()
    _print_people(people)


def _print_people(people) -> None:
    if not people:
        console.print("nobody is enrolled")
    for p in people:
        state = " EXPIRED (ignored)" if p.expired() else ""
        console.print(f"{p.name}\tphotos={p.n_embeddings}\tpurpose={p.purpose or '-'}\tconsent={p.consent_date or '-'}"
                      f"\texpires={p.expires or 'never'}{state}", markup=False, highlight=False)


@gallery_app.command("rename")
@one_line_errors
def rename(old: str = typer.Argument(...), new: str = typer.Argument(...),
           gallery: Optional[Path] = _GALLERY, key_file: Optional[Path] = _KEY) -> None:
    """Rename an enrolled person."""
    with _open(gallery, key_file) as g:
        g.rename(old, new)
    record_event("gallery.rename", {"person": person_ref(old), "now": person_ref(new)})
    console.print(f"renamed {old!r} to {new!r}", markup=False, highlight=False)


@gallery_app.command("remove")
@one_line_errors
def remove(name: str = typer.Argument(...), gallery: Optional[Path] = _GALLERY, key_file: Optional[Path] = _KEY) -> None:
    """Delete a person and their embeddings for good (secure delete + VACUUM)."""
    with _open(gallery, key_file) as g:
        g.remove(name)
    record_event("gallery.remove", {"person": person_ref(name)})
    console.print(f"removed {name!r} and their embeddings", markup=False, highlight=False)


@gallery_app.command("migrate")
@one_line_errors
def migrate(gallery: Optional[Path] = _GALLERY, key_file: Optional[Path] = _KEY) -> None:
    """Seal the consent records of a gallery written by an older veil (format veil-gallery-1).

    Until then the old file could have been edited without the key: check the people listed
    here (names, purpose, dates) and remove or correct any you did not enrol that way.
    """
    from ..identify import Gallery

    with Gallery(gallery, key_file, migrate=True) as g:
        people = g.migrate()
    console.print(f"sealed the consent records of {len(people)} person(s) in {g.path}; check them:", markup=False,
                  highlight=False)
    _print_people(people)


@gallery_app.command("test")
@one_line_errors
def test(
    name: str = typer.Argument(..., help="An enrolled person."),
    media: Path = typer.Argument(..., help="An image or a video in which to look for the person."),
    match_threshold: Optional[float] = typer.Option(None, help="Same-person distance (default: the embedder's)."),
    uncertain_margin: float = typer.Option(0.1, help="Width of the uncertain (anonymized) band above the threshold."),
    per_s: float = typer.Option(2.0, "--per-s", min=0.1, help="Video frames looked at per second."),
    gallery: Optional[Path] = _GALLERY,
    key_file: Optional[Path] = _KEY,
) -> None:
    """Show the distances veil would see between NAME and every face in MEDIA, before a real run.

    Per face: its distance to the person's enrolled views and what --spare NAME would do with
    it. Nothing is written; embeddings are never shown.
    """
    from ..identify import GalleryError, build_embedder
    from ..identify.enroll import distances_in

    embedder = build_embedder()
    with _open(gallery, key_file) as g:
        if name not in g.names():
            raise GalleryError(f"nobody is enrolled as {name!r}; enrolled: {', '.join(g.names()) or 'nobody'}")
        _, vecs = g.embeddings(embedder.name, [name])
    if not len(vecs):
        raise ConfigError(f"{name!r} has no current embeddings for {embedder.name} (expired, or enrolled with another model)")
    thr = match_threshold or embedder.threshold
    rows = distances_in(media, vecs, embedder, per_s=per_s)
    if not rows:
        console.print(f"no face found in {media}")
        return
    counts = {"kept": 0, "uncertain": 0, "someone else": 0, "not embedded": 0}
    for r in rows:
        d = r["distance"]
        if d is None:
            kind, what = "not embedded", "not embedded (too small, turned, or cut by the frame's edge): anonymized"
        elif d < thr:
            kind, what = "kept", f"{name}: kept by --spare {name}"
        elif d < thr + uncertain_margin:
            kind, what = "uncertain", "uncertain: anonymized"
        else:
            kind, what = "someone else", "someone else: anonymized"
        counts[kind] += 1
        dist = "  –  " if d is None else f"{d:.3f}"
        console.print(f"frame {r['frame']:>5}  box {r['box']}  distance {dist}  {what}", markup=False, highlight=False)
    ds = [r["distance"] for r in rows if r["distance"] is not None]
    closest = f"; closest {min(ds):.3f}" if ds else ""
    console.print(f"{len(rows)} face(s): " + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
                  + f" (match below {thr:g}, uncertain up to {thr + uncertain_margin:g}){closest}",
                  markup=False, highlight=False)
