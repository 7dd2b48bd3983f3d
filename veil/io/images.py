"""Reading and writing still images, privacy first.

veil's job is to hide faces; an output that hides the faces but still says where and when the
photo was taken, or still carries an untouched copy of the picture, defeats the purpose. So
this module is deliberately conservative:

* **No metadata by default.** The anonymized pixels are written into a brand-new image: no
  EXIF, no XMP, no IPTC, no JPEG comments, no PNG text chunks. Only the ICC colour profile is
  copied, because it describes colours, not people (dropping it would shift the colours).
* **GPS is always removed.** A location is personal data (GDPR art. 4), often enough on its own
  to find someone's home. With ``keep_metadata=True`` the EXIF is kept *minus* the GPS IFD, and
  XMP is still dropped: XMP can repeat the GPS position (``exif:GPSLatitude``), face regions
  with names (``mwg-rs:Regions``) and arbitrary vendor data, and there is no safe generic way
  to clean it.
* **Embedded pictures are always removed.** The EXIF thumbnail (IFD1) is a small copy of the
  *original*, un-anonymized image; viewers and file managers happily show it. The same goes
  for the MakerNote (vendor blobs hold preview JPEGs) and for the extra images of an MPO file
  (stereo view, or the "Ultra HDR" gain map of phone photos). Only the anonymized pixels are
  written; IFD0 tags are kept from an allowlist of descriptive tags, never the tags that point
  at image data.
* **Fail closed.** Anything we cannot read completely is an error, never a best effort: a
  truncated file raises :class:`~veil.errors.CorruptMediaError` (Pillow's
  ``LOAD_TRUNCATED_IMAGES`` stays off), an animated image or multi-page TIFF raises
  :class:`~veil.errors.UnsupportedMediaError` rather than anonymizing frame 1 and silently
  dropping or leaking the others, and EXIF that cannot be parsed or re-encoded safely is dropped.
* **Decompression bombs** are refused from the header, before any pixel is decoded: more than
  ``max_pixels`` pixels raises :class:`~veil.errors.MediaTooLargeError`. Pillow's own guard
  (``PIL.Image.MAX_IMAGE_PIXELS``, a process-wide setting this module never changes) also
  applies and is mapped to the same error, so the effective limit is
  ``min(max_pixels, 2 * PIL.Image.MAX_IMAGE_PIXELS)`` (about 179 Mpx with Pillow's default).
  Memory is bounded too, from the same header: the bytes the decode needs (Pillow's buffer in
  the file's pixel mode, a converted copy, the RGB array) over ``max_bytes`` raise
  :class:`~veil.errors.MediaTooLargeError` in one line. Pillow's ``DecompressionBombWarning``
  (from 89 Mpx) is silenced inside :func:`read_image`: veil's own limits have decided by then,
  and a raw Python warning is no message for a user.
* **Atomic output.** Writes go to a temporary file in the target folder that is renamed over
  the target only when complete (:func:`veil.io.atomic.atomic_output`).

Pixels come out as HxWx3 ``uint8`` RGB with the EXIF orientation applied (so detectors see
faces upright), plus a separate HxW ``uint8`` alpha channel where the source had transparency.
16-bit images are scaled to 8 bits; CMYK and greyscale images with an ICC profile are converted
to sRGB through the profile (and the profile is then not written, sRGB being the default).
"""

from __future__ import annotations

import contextlib
import io
import logging
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError, features

from ..errors import (
    ConfigError,
    CorruptMediaError,
    InputError,
    MediaNotFoundError,
    MediaTooLargeError,
    OutputError,
    ProcessingError,
    UnsupportedMediaError,
)
from .atomic import atomic_output
from .paths import IMAGE_SUFFIXES

__all__ = ["IMAGE_SUFFIXES", "LoadedImage", "read_image", "write_image"]

log = logging.getLogger("veil")

#: Pillow plugins read_image may use. Restricting them keeps odd formats (and, e.g., EPS,
#: which runs Ghostscript) out. GIF is read only to refuse animations with a clear message;
#: a still GIF is fine as input (write it as PNG). JPEGs with extra embedded images come back
#: from the JPEG plugin as format "MPO" (see the module docstring).
_READ_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")

#: Output format by suffix.
_WRITE_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
_ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF"})
_EXIF_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "TIFF"})
_ICC_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "TIFF"})

#: File signatures: a file that starts like an image but that Pillow cannot identify is
#: corrupt (e.g. truncated inside its header), not "not an image".
_MAGIC = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF little-endian
    b"MM\x00*",  # TIFF big-endian
    b"II+\x00",  # BigTIFF
    b"MM\x00+",
)

_ORIENTATION = 0x0112
#: EXIF orientation -> the transpose that shows the image upright.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

#: IFD0 tags kept with ``keep_metadata`` (descriptive only). Everything else in IFD0 goes:
#: the GPS pointer, image-data pointers (thumbnail offsets, strips, tiles, SubIFDs), XMP
#: (tag 700), IPTC (33723), Photoshop resources (34377, they hold a thumbnail), layers (37724),
#: the ICC tag (written separately) and structural TIFF tags that do not describe the output.
_IFD0_KEEP = frozenset(
    {
        0x010E,  # ImageDescription
        0x010F,  # Make
        0x0110,  # Model
        0x0112,  # Orientation (reset to 1)
        0x011A,  # XResolution
        0x011B,  # YResolution
        0x0128,  # ResolutionUnit
        0x0131,  # Software
        0x0132,  # DateTime
        0x013B,  # Artist
        0x013C,  # HostComputer
        0x013E,  # WhitePoint
        0x013F,  # PrimaryChromaticities
        0x0213,  # YCbCrPositioning
        0x8298,  # Copyright
    }
)
#: Tags dropped from the Exif sub-IFD: the MakerNote (opaque vendor data that can embed
#: preview images; its internal offsets break when rewritten anyway) and the Interop pointer.
_EXIF_IFD_DROP = frozenset({ExifTags.Base.MakerNote, ExifTags.IFD.Interop})


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image and the metadata that may be written back.

    ``exif`` is already sanitized: Orientation reset to 1 (the pixels are upright), no GPS, no
    thumbnail, no MakerNote. It is only written when ``keep_metadata`` is asked for.
    """

    rgb: np.ndarray  #: HxWx3 uint8, C-contiguous, EXIF orientation applied
    alpha: Optional[np.ndarray]  #: HxW uint8 when the source had transparency
    format: str  #: Pillow format name of the source, e.g. "JPEG"
    exif: Optional[bytes]  #: sanitized EXIF (``Exif\0\0`` + TIFF), None if none
    icc_profile: Optional[bytes]  #: RGB ICC profile, None if none (or converted to sRGB)
    path: Optional[Path]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the upright image."""
        return self.rgb.shape[1], self.rgb.shape[0]

    def camera_tags(self) -> dict[str, float]:
        """Focal-length EXIF tags of the (sanitized) EXIF, for distance estimation.

        Keys present only when the tag is: ``FocalLength`` (mm), ``FocalLengthIn35mmFilm``
        (mm), ``FocalPlaneXResolution`` (pixels per unit), ``FocalPlaneResolutionUnit``
        (2 inch, 3 cm, 4 mm), ``ExifImageWidth`` / ``ExifImageHeight`` (pixels).
        """
        if not self.exif:
            return {}
        try:
            exif = Image.Exif()
            exif.load(self.exif)
            sub = exif.get_ifd(ExifTags.IFD.Exif)
        except Exception:
            return {}
        out: dict[str, float] = {}
        for name in ("FocalLength", "FocalLengthIn35mmFilm", "FocalPlaneXResolution",
                     "FocalPlaneResolutionUnit", "ExifImageWidth", "ExifImageHeight"):
            value = sub.get(getattr(ExifTags.Base, name))
            try:
                if value is not None and float(value) > 0:
                    out[name] = float(value)
            except (TypeError, ValueError, ZeroDivisionError):
                pass
        return out


# --------------------------------------------------------------------------- reading


def read_image(path: Path, max_pixels: int = 200_000_000, max_bytes: int | None = 2 * 2**30,
               then_bytes_per_pixel: int = 0) -> LoadedImage:
    """Decode ``path`` completely, or raise an :class:`~veil.errors.InputError` naming it.

    Raises:
        MediaNotFoundError: ``path`` does not exist.
        UnsupportedMediaError: a directory or other non-file, not an image, a format veil
            does not read, an unsupported pixel mode, or an animated / multi-page image.
        CorruptMediaError: empty, truncated or undecodable.
        MediaTooLargeError: more than ``max_pixels`` pixels, or more than ``max_bytes`` of
            memory (both checked from the header, before decoding), or over Pillow's
            decompression-bomb limit. The memory is the decode's (:func:`decode_bytes`) or,
            if more, the RGB array plus ``then_bytes_per_pixel`` for what the caller does
            next with it (e.g. an anonymized copy and :func:`write_bytes_per_pixel`).
        InputError: the file cannot be opened (e.g. permission denied).
    """
    path = Path(path)
    if max_pixels < 1:
        raise ConfigError(f"max_pixels must be at least 1, got {max_pixels}")
    if not path.exists():
        raise MediaNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise UnsupportedMediaError(f"{path}: is a directory, not an image")
    if not path.is_file():  # FIFO, socket, device: opening could block or never end
        raise UnsupportedMediaError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise CorruptMediaError(f"{path}: empty file")

    try:
        with _no_bomb_warning():
            im = Image.open(path, formats=_READ_FORMATS)
    except FileNotFoundError:
        raise MediaNotFoundError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning arrives as an exception only when warnings are turned into errors.
        raise _bomb_error(path, exc) from None
    except UnidentifiedImageError:
        if _looks_like_image(path):
            raise CorruptMediaError(f"{path}: corrupt image (the header cannot be read)") from None
        raise UnsupportedMediaError(f"{path}: not an image, or a format veil does not read") from None
    except MemoryError:
        raise MediaTooLargeError(f"{path}: out of memory reading the image header") from None
    except Exception as exc:  # plugins raise all sorts of things on malformed headers
        raise CorruptMediaError(f"{path}: corrupt image header ({_one_line(exc)})") from exc

    with im, _no_bomb_warning():
        return _decode(im, path, max_pixels, max_bytes, then_bytes_per_pixel)


@contextlib.contextmanager
def _no_bomb_warning():
    """Pillow warns (a raw Python warning, or an exception under ``-W error``) from 89 Mpx;
    veil's own limits, checked from the header, decide instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


#: Bytes per pixel of Pillow's buffer, by mode (3-band modes are stored in 4 bytes).
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}


def decode_bytes(im: Image.Image) -> int:
    """Memory the decode of ``im`` needs, from its header: Pillow's buffer in the file's
    mode, a converted RGB(A) copy unless the file is RGB already, and the RGB array.
    (docs/benchmarks.md: an image run's measured peak is within 6 % of the whole estimate.)"""
    width, height = im.size
    per_pixel = _MODE_BYTES.get(im.mode, 4) + (0 if im.mode == "RGB" else 4) + 3
    return width * height * per_pixel


def _mb(n: int) -> str:
    mb = n / 2**20
    return f"{mb:.1f} MB" if mb < 10 else f"{mb:,.0f} MB"


def write_bytes_per_pixel(dst: Path) -> int:
    """Memory a pixel costs :func:`write_image`: Pillow's copy of the frame (4 bytes), and the
    encoder's buffers; a JPEG's optimized Huffman tables need every DCT coefficient (~8)."""
    return 4 + (8 if _WRITE_FORMATS.get(Path(dst).suffix.lower()) == "JPEG" else 1)


def _decode(im: Image.Image, path: Path, max_pixels: int, max_bytes: int | None = None,
            then_bytes_per_pixel: int = 0) -> LoadedImage:
    width, height = im.size
    if width * height > max_pixels:
        raise MediaTooLargeError(
            f"{path}: {width}x{height} = {width * height:,} pixels is over the limit of {max_pixels:,} (max_pixels)"
        )
    need = max(decode_bytes(im), width * height * (3 + then_bytes_per_pixel))
    if max_bytes is not None and need > max_bytes:
        raise MediaTooLargeError(
            f"{path}: {width}x{height} {im.mode} image needs about {_mb(need)} of memory, "
            f"over the limit of {_mb(max_bytes)} (--max-image-mb)"
        )
    if width <= 0 or height <= 0:
        raise CorruptMediaError(f"{path}: image has no pixels ({width}x{height})")
    fmt = im.format or "unknown"

    try:
        n_frames = int(getattr(im, "n_frames", 1))
    except Exception as exc:  # counting GIF frames walks the whole file
        raise CorruptMediaError(f"{path}: corrupt or truncated image ({_one_line(exc)})") from exc
    if n_frames > 1:
        if fmt == "MPO":
            log.warning(
                "%s: MPO file with %d extra embedded image(s) (preview, stereo view or HDR "
                "gain map); only the primary image is read, the others are not written",
                path,
                n_frames - 1,
            )
        else:
            raise UnsupportedMediaError(
                f"animated images are not supported: {path} has {n_frames} frames "
                f"({fmt}); split it into single images, or convert it to a video"
            )

    try:
        im.load()  # full decode now: truncation must fail here, not later
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_error(path, exc) from None
    except MemoryError:
        raise MediaTooLargeError(f"{path}: out of memory decoding {width}x{height} pixels") from None
    except Exception as exc:
        raise CorruptMediaError(f"{path}: corrupt or truncated image ({_one_line(exc)})") from exc

    exif_obj = _read_exif(im, path)
    orientation = 1
    if exif_obj is not None:
        value = exif_obj.get(_ORIENTATION, 1)
        if isinstance(value, int) and 1 <= value <= 8:
            orientation = value
        elif value is not None:
            log.warning("%s: ignoring invalid EXIF orientation %r", path, value)

    icc = im.info.get("icc_profile") or None
    color, alpha = _split_alpha(im, path)
    rgb_img, icc = _to_rgb(color, icc, path)

    method = _TRANSPOSE.get(orientation)
    if method is not None:
        rgb_img = rgb_img.transpose(method)
        if alpha is not None:
            alpha = alpha.transpose(method)

    rgb = _to_array(rgb_img)
    alpha_arr = np.array(alpha, dtype=np.uint8, order="C") if alpha is not None else None
    assert rgb.ndim == 3 and rgb.shape[2] == 3
    exif = _sanitize_exif(exif_obj, path) if exif_obj is not None else None
    return LoadedImage(rgb=rgb, alpha=alpha_arr, format=fmt, exif=exif, icc_profile=icc, path=path)


def _to_array(img: Image.Image) -> np.ndarray:
    """``np.array(img)`` for an RGB image, in bands of rows: numpy's own conversion goes
    through a full-size ``bytes`` copy (3 more bytes a pixel at the peak, 120 MB at 40 Mpx)."""
    width, height = img.size
    out = np.empty((height, width, 3), np.uint8)
    rows = max(1, _BAND_BYTES // (3 * width))
    for y in range(0, height, rows):
        out[y:y + rows] = np.asarray(img.crop((0, y, width, min(height, y + rows))))
    return out


_BAND_BYTES = 16 * 2**20


def _bomb_error(path: Path, exc: BaseException) -> MediaTooLargeError:
    return MediaTooLargeError(f"{path}: image too large, refused as a possible decompression bomb ({_one_line(exc)})")


def _split_alpha(im: Image.Image, path: Path) -> tuple[Image.Image, Optional[Image.Image]]:
    """8-bit colour image (any 8-bit mode) and its alpha channel (mode L) if it has one."""
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        # 16-bit greyscale (Pillow reads 16-bit PNGs as I;16 or I): scale to 8 bits with
        # rounding. Mode I is assumed to hold 16-bit values, as it does for PNG and TIFF.
        arr = np.asarray(im)
        if arr.dtype.kind == "i":
            arr = np.clip(arr, 0, 65535)
        arr = arr.astype(np.uint32)  # 65535 * 255 fits; half the memory of int64
        gray = ((arr * 255 + 32767) // 65535).astype(np.uint8)
        alpha = None
        key = im.info.get("transparency")
        if isinstance(key, int):
            alpha = Image.fromarray(np.where(arr == key, 0, 255).astype(np.uint8))
        return Image.fromarray(gray), alpha
    if mode == "F":
        raise UnsupportedMediaError(f"{path}: floating-point images are not supported")
    if mode in ("LA", "La"):
        la = im.convert("LA")  # un-premultiplies La
        return la.getchannel("L"), la.getchannel("A")
    if mode in ("RGBA", "RGBa", "PA") or (mode == "P" and _palette_has_alpha(im)):
        rgba = im.convert("RGBA")
        return rgba.convert("RGB"), rgba.getchannel("A")
    if mode == "L" and isinstance(im.info.get("transparency"), int):
        arr = np.asarray(im)
        key = im.info["transparency"]
        return im, Image.fromarray(np.where(arr == key, 0, 255).astype(np.uint8))
    if mode in ("RGB", "1") and "transparency" in im.info:
        rgba = im.convert("RGBA")
        return rgba.convert("RGB"), rgba.getchannel("A")
    return im, None


def _palette_has_alpha(im: Image.Image) -> bool:
    # Image.has_transparency_data, which needs Pillow >= 10.1
    return "transparency" in im.info or (im.palette is not None and im.palette.mode.endswith("A"))


def _to_rgb(im: Image.Image, icc: Optional[bytes], path: Path) -> tuple[Image.Image, Optional[bytes]]:
    """RGB image and the ICC profile that still describes it (None: sRGB)."""
    space = _icc_color_space(icc)
    if im.mode == "RGB":
        return im, icc if space == b"RGB " else None
    if icc is not None and space in (b"CMYK", b"GRAY") and im.mode in ("CMYK", "L"):
        want = b"CMYK" if im.mode == "CMYK" else b"GRAY"
        if space == want and features.check("littlecms2"):
            try:
                from PIL import ImageCms

                src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                srgb = ImageCms.createProfile("sRGB")
                out = ImageCms.profileToProfile(im, src, srgb, outputMode="RGB")
                if out is not None:
                    return out, None
            except Exception as exc:  # a broken profile: fall back to the plain conversion
                log.warning("%s: cannot apply its ICC profile (%s); converting without it", path, _one_line(exc))
    try:
        out = im.convert("RGB")
    except Exception:
        raise UnsupportedMediaError(f"{path}: unsupported pixel mode {im.mode}") from None
    # P and RGB-like modes keep an RGB profile; a CMYK / grey profile no longer fits.
    return out, icc if space == b"RGB " else None


def _icc_color_space(icc: Optional[bytes]) -> Optional[bytes]:
    if not icc or len(icc) < 128:
        return None
    return bytes(icc[16:20])


def _read_exif(im: Image.Image, path: Path) -> Optional[Image.Exif]:
    try:
        exif = im.getexif()
    except Exception as exc:
        log.warning("%s: unreadable EXIF dropped (%s)", path, _one_line(exc))
        return None
    return exif if len(exif) else None


def _sanitize_exif(src: Image.Exif, path: Path) -> Optional[bytes]:
    """EXIF to keep: allowlisted IFD0 tags, the Exif sub-IFD minus MakerNote, nothing else.

    No GPS IFD, no IFD1 (thumbnail), no MakerNote, Orientation 1. Built into a fresh
    :class:`PIL.Image.Exif` (so nothing cached in ``src`` can leak back in) and parsed again
    to check; on any doubt the EXIF is dropped entirely.
    """
    try:
        out = Image.Exif()
        out.endian = src.endian
        for tag in list(src.keys()):
            if tag in _IFD0_KEEP:
                out[tag] = src[tag]
        if _ORIENTATION in out:
            out[_ORIENTATION] = 1
        if ExifTags.IFD.Exif in src:
            sub = {k: v for k, v in src.get_ifd(ExifTags.IFD.Exif).items() if k not in _EXIF_IFD_DROP}
            if sub:
                out[ExifTags.IFD.Exif] = sub
        if not len(out):
            return None
        data = out.tobytes()
        check = Image.Exif()
        check.load(data)
        gps = ExifTags.IFD.GPSInfo
        if gps in check or check.get_ifd(gps) or check.get_ifd(ExifTags.IFD.IFD1):
            raise ValueError("GPS or thumbnail survived sanitizing")
        return data
    except Exception as exc:  # fail closed: drop what we cannot rewrite safely
        log.warning("%s: EXIF dropped, it cannot be rewritten safely (%s)", path, _one_line(exc))
        return None


def _has_exif_subifd(data: bytes) -> bool:
    exif = Image.Exif()
    exif.load(data)
    return ExifTags.IFD.Exif in exif


def _looks_like_image(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return any(head.startswith(m) for m in _MAGIC)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# --------------------------------------------------------------------------- writing


def write_image(
    image: LoadedImage,
    rgb: np.ndarray,
    dst: Path,
    keep_metadata: bool = False,
    quality: int = 95,
    replace: bool = True,
) -> None:
    """Write ``rgb`` (the anonymized ``image.rgb``) to ``dst``, atomically.

    The format comes from ``dst``'s suffix. The source's alpha channel is re-attached for
    PNG, WebP and TIFF (JPEG and BMP have none). The ICC profile is kept; EXIF (already
    without GPS, thumbnail and MakerNote, see :class:`LoadedImage`) only with
    ``keep_metadata``; XMP, IPTC, comments and text chunks never.

    JPEG: ``quality``, 4:4:4 chroma at quality >= 90 (keeps colour edges crisp), else 4:2:0.
    WebP: lossy at ``quality``, alpha lossless. TIFF: deflate when libtiff is available, except
    when kept EXIF has an Exif sub-IFD (libtiff cannot write it): then uncompressed.
    ``replace=False``: never replace an existing ``dst``, even one that appeared meanwhile.

    Raises:
        ConfigError: unsupported output suffix, or quality outside 1..100.
        OutputError: the output folder is missing or the file cannot be written.
        ProcessingError: the encoder refused the data (e.g. EXIF too large for JPEG).
        ValueError / TypeError: ``rgb`` is not a uint8 array the size of ``image.rgb``.
    """
    dst = Path(dst)
    suffix = dst.suffix.lower()
    fmt = _WRITE_FORMATS.get(suffix)
    if fmt is None:
        raise ConfigError(
            f"{dst}: unsupported output format {suffix or '(no suffix)'!r}; "
            f"use one of {', '.join(sorted(_WRITE_FORMATS))}"
        )
    if not 1 <= int(quality) <= 100:
        raise ConfigError(f"quality must be between 1 and 100, got {quality}")
    if not isinstance(rgb, np.ndarray):
        raise TypeError(f"rgb must be a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8:
        raise TypeError(f"rgb must be uint8, got {rgb.dtype}")
    if rgb.shape != image.rgb.shape:
        raise ValueError(f"rgb has shape {rgb.shape}, expected {image.rgb.shape} (the image as read)")
    parent = dst.parent
    if not parent.is_dir():
        raise OutputError(f"{dst}: output folder {parent} does not exist")
    if dst.is_dir():
        raise OutputError(f"{dst}: is a directory")

    pil = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    if image.alpha is not None:
        if fmt in _ALPHA_FORMATS:
            pil.putalpha(Image.fromarray(np.ascontiguousarray(image.alpha), "L"))
        else:
            log.debug("%s: %s has no alpha channel; transparency dropped", dst, fmt)

    params: dict[str, Any] = {}
    if image.icc_profile and fmt in _ICC_FORMATS:
        params["icc_profile"] = image.icc_profile
    if keep_metadata and image.exif:
        if fmt in _EXIF_FORMATS:
            exif = image.exif
            if fmt == "WEBP" and exif.startswith(b"Exif\x00\x00"):
                exif = exif[6:]  # the WebP EXIF chunk holds bare TIFF data
            params["exif"] = exif
        else:
            log.debug("%s: %s cannot hold EXIF; metadata not written", dst, fmt)
    if fmt == "JPEG":
        params.update(quality=int(quality), subsampling=0 if quality >= 90 else 2, optimize=True)
    elif fmt == "WEBP":
        params.update(quality=int(quality), method=4)
    elif fmt == "PNG":
        params.update(compress_level=6)
    elif fmt == "TIFF" and features.check("libtiff"):
        # libtiff cannot write the Exif sub-IFD Pillow hands it; Pillow's own (uncompressed)
        # TIFF writer can. So kept EXIF with a sub-IFD means an uncompressed TIFF.
        if not ("exif" in params and _has_exif_subifd(params["exif"])):
            params.update(compression="tiff_adobe_deflate")

    try:
        with atomic_output(dst, suffix, replace=replace) as tmp:
            pil.save(tmp, format=fmt, **params)
    except OSError as exc:
        reason = exc.strerror or _one_line(exc)
        raise OutputError(f"{dst}: cannot write ({reason})") from exc
    except (ValueError, struct.error) as exc:
        raise ProcessingError(f"{dst}: cannot encode {fmt} ({_one_line(exc)}); nothing written") from exc
    log.debug("wrote %s (%s, %dx%d)", dst, fmt, rgb.shape[1], rgb.shape[0])
