"""``veil detect``: detections in the WIDER FACE submission layout."""

from __future__ import annotations

from pathlib import Path

from ..errors import UnsupportedMediaError
from ..io.paths import IMAGE_SUFFIXES, walk_media
from .progress import _progress


def run_detect(anon, src: Path, out_dir: Path, min_score: float | None, quiet: bool) -> tuple[int, int]:
    """Detect faces in every image below ``src``; returns (images, detections)."""
    from ..io.images import read_image
    from ..io.wider_format import write_wider_predictions

    if src.is_dir():
        paths = [p for p in walk_media(src) if p.suffix.lower() in IMAGE_SUFFIXES]
        root = src
    else:
        if src.suffix.lower() not in IMAGE_SUFFIXES:
            raise UnsupportedMediaError(f"{src}: veil detect reads images")
        paths, root = [src], src.parent
    n_faces = 0
    with _progress(quiet) as progress:
        task = progress.add_task("detect", total=len(paths), speed_fps="")
        for path in paths:
            img = read_image(path, anon.config.image.max_pixels)
            faces = anon.detect(img.rgb, min_score)
            rel = path.relative_to(root).as_posix()
            write_wider_predictions(out_dir, rel, faces)
            n_faces += len(faces)
            progress.advance(task)
    return len(paths), n_faces
