"""The options that several commands take, each defined once.

A command declares ``threshold: Threshold = None`` and gets the flag, its type, choices, help
text and help panel from here, so ``veil anonymize``, ``stream``, ``analyze``, ``render``,
``detect`` and the ``eval`` commands cannot drift apart (one said the mask scale defaults to
1.3; ``stream`` had no ``--image`` for ``--filter image``). Defaults shown in the help are read
from :mod:`veil.config`, the one place they are set.

Each parameter is named after the config setting it fills (``max_memory_mb`` for
``--max-image-mb``, ``copy_audio`` for ``--audio``): :func:`veil.cli.common.build` passes the
parameters on by name, and an invalid value is reported with the flag declared here.

The groups below are the help panels: detection, filter, video, output, distance, identity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from ..config import DetectConfig, ImageConfig, RenderConfig, TrackConfig, VideoConfig
from ..render import FILTERS
from .common import AudioChoice, DetectorName, DeviceName, FilterName, PresetName, ShapeName

DETECT = "Detection"
RENDER = "Filter"
TRACK = "Video tracking"
VIDEO = "Video"
OUTPUT = "Output"
DEPTH = "Distance"
IDENTITY = "Identity"


def _default(section, field: str):
    """A setting's default, for the help text (so the help cannot disagree with the config)."""
    return section.model_fields[field].default


#: ``--strength`` / ``--allow-weak`` help, the floors read from the filters (docs/benchmarks.md 3.1)
_FLOORS = {name: float(getattr(cls, "min_strength", 0.0)) for name, cls in FILTERS.items()}
STRENGTH_HELP = ("Blur/pixelate strength relative to the default (default 1.0); below the filter's measured floor ("
                 + ", ".join(f"{name} {floor:g}" for name, floor in _FLOORS.items() if floor)
                 + ") refused without --allow-weak.")
ALLOW_WEAK_HELP = "Accept a --strength below the filter's floor (faces may stay recognisable), with a warning."

# -- every command that builds an Anonymizer ---------------------------------------------------
Preset = Annotated[PresetName, typer.Option(help="Settings preset.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress (bars on a terminal, log lines otherwise).")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.", rich_help_panel=OUTPUT)]

# -- detection ---------------------------------------------------------------------------------
Threshold = Annotated[Optional[float], typer.Option(
    help=f"Detection score threshold (default {_default(DetectConfig, 'threshold'):g}).", rich_help_panel=DETECT)]
MaxSide = Annotated[Optional[int], typer.Option(
    help=f"Detection resolution (long side, px; default {_default(DetectConfig, 'max_side')}); 0 = native.",
    rich_help_panel=DETECT)]
Tile = Annotated[Optional[bool], typer.Option("--tile/--no-tile", help="Also detect on full-resolution tiles.",
                                              rich_help_panel=DETECT)]
Device = Annotated[Optional[DeviceName], typer.Option(help="Execution provider.", rich_help_panel=DETECT)]
Detector = Annotated[Optional[DetectorName], typer.Option(help="Detector.", rich_help_panel=DETECT)]
LowLight = Annotated[Optional[bool], typer.Option(
    "--low-light/--no-low-light", rich_help_panel=DETECT,
    help="Extra pass on dark frames, brightened and denoised (default on; free on normal frames).")]

# -- tracking ----------------------------------------------------------------------------------
DetectEvery = Annotated[Optional[int], typer.Option(
    help="Run the detector every k-th frame (tracking in between; default "
         f"{_default(TrackConfig, 'detect_every')}).", rich_help_panel=TRACK)]
Tracking = Annotated[Optional[bool], typer.Option("--track/--no-track", help="Tracking and gap filling (default on).",
                                                  rich_help_panel=TRACK)]

# -- filter ------------------------------------------------------------------------------------
Filter = Annotated[Optional[FilterName], typer.Option(
    "--filter", "-f", rich_help_panel=RENDER,
    help=f"How faces are hidden (default {_default(RenderConfig, 'filter')}). 'none'/'debug' do NOT anonymize.")]
Color = Annotated[Optional[str], typer.Option(help="Colour for --filter solid/image, e.g. '#ff00ff'.", rich_help_panel=RENDER)]
Image = Annotated[Optional[Path], typer.Option(help="Replacement image for --filter image (PNG with alpha).",
                                               rich_help_panel=RENDER)]
Shape = Annotated[Optional[ShapeName], typer.Option(
    help=f"Mask shape (default {_default(RenderConfig, 'shape')}).", rich_help_panel=RENDER)]
MaskScale = Annotated[Optional[float], typer.Option(
    help=f"Mask size relative to the head box (default {_default(RenderConfig, 'mask_scale'):g}).", rich_help_panel=RENDER)]
Head = Annotated[Optional[bool], typer.Option(
    "--head/--face-only", rich_help_panel=RENDER,
    help="Grow masks over the head: hair, and the back of turned heads (default on).")]
Feather = Annotated[Optional[float], typer.Option(
    help=f"Soft edge, fraction of mask size, outside the mask (default {_default(RenderConfig, 'feather'):g}).",
    rich_help_panel=RENDER)]
Strength = Annotated[Optional[float], typer.Option(help=STRENGTH_HELP, rich_help_panel=RENDER)]
AllowWeak = Annotated[Optional[bool], typer.Option("--allow-weak", help=ALLOW_WEAK_HELP, rich_help_panel=RENDER)]

# -- video -------------------------------------------------------------------------------------
Codec = Annotated[Optional[str], typer.Option(help=f"Video codec (default {_default(VideoConfig, 'codec')}).",
                                              rich_help_panel=VIDEO)]
Crf = Annotated[Optional[int], typer.Option(
    help=f"Video quality (CRF, lower = better) (default {_default(VideoConfig, 'crf')}).", rich_help_panel=VIDEO)]
EncoderPreset = Annotated[Optional[str], typer.Option(
    help=f"Encoder speed preset (default {_default(VideoConfig, 'encoder_preset')}).", rich_help_panel=VIDEO)]
CopyAudio = Annotated[Optional[AudioChoice], typer.Option(
    "--audio", rich_help_panel=VIDEO,
    help="keep: copy the audio track unchanged (default: the sound is part of the record); drop: remove it. "
         "A voice identifies a person as well as a face does: drop it when the people filmed must not be recognized.")]
Start = Annotated[Optional[float], typer.Option(help="Start time in seconds.", rich_help_panel=VIDEO)]
End = Annotated[Optional[float], typer.Option(help="End time in seconds.", rich_help_panel=VIDEO)]

# -- output ------------------------------------------------------------------------------------
KeepMetadata = Annotated[Optional[bool], typer.Option(
    "--keep-metadata/--strip-metadata", rich_help_panel=OUTPUT,
    help="Keep image EXIF (GPS is always removed) (default strip).")]
MaxImageMb = Annotated[Optional[int], typer.Option(
    "--max-image-mb", rich_help_panel=OUTPUT,
    help="Refuse images that need more memory (MB, estimated from the header; "
         f"default {_default(ImageConfig, 'max_memory_mb')}).")]
Report = Annotated[Optional[Path], typer.Option(
    help="Write a JSON report of faces, decisions and the run manifest.", rich_help_panel=OUTPUT)]

# -- distance ----------------------------------------------------------------------------------
KeepNearest = Annotated[Optional[int], typer.Option(
    help="Keep the N nearest faces visible (no calibration needed).", rich_help_panel=DEPTH)]

# -- identity ----------------------------------------------------------------------------------
Spare = Annotated[Optional[List[str]], typer.Option(
    "--spare", help="Keep this enrolled person visible (repeatable); anonymize everyone else.", rich_help_panel=IDENTITY)]
SpareEnrolled = Annotated[Optional[bool], typer.Option(
    "--spare-enrolled", help="Keep everyone enrolled (consent not expired) visible.", rich_help_panel=IDENTITY)]
Only = Annotated[Optional[List[str]], typer.Option(
    "--only", help="Anonymize only this enrolled person (repeatable), and any uncertain face.", rich_help_panel=IDENTITY)]
Gallery = Annotated[Optional[Path], typer.Option("--gallery", help="Gallery file (see `veil gallery`).",
                                                 rich_help_panel=IDENTITY)]
KeyFile = Annotated[Optional[Path], typer.Option(
    "--key-file", help="Gallery key file (default next to the gallery; $VEIL_GALLERY_KEY wins).", rich_help_panel=IDENTITY)]
NameHidden = Annotated[Optional[bool], typer.Option(
    "--name-hidden", rich_help_panel=IDENTITY,
    help="Name identified people in the report even when their faces are anonymized (default: only those left visible).")]
