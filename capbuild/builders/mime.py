"""Which image types the image stage can turn into a JPEG: img2dataset decodes with OpenCV, which reads
raster formats but not SVG, XCF, DjVu, PDF, audio or video (all present in WIT)."""

from __future__ import annotations

import mimetypes
from urllib.parse import urlsplit

DECODABLE_MIME_TYPES = frozenset(
    {"image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/webp", "image/bmp", "image/tiff", "image/gif"}
)
EXTRA_EXTENSIONS = {".jpe": "image/jpeg", ".jfif": "image/jpeg", ".webp": "image/webp", ".tif": "image/tiff"}


def mime_from_name(name: str) -> str | None:
    """The mime type a URL or file name's extension implies, or None."""
    path = urlsplit(name).path if "://" in name else name
    suffix = path[path.rfind(".") :].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if not suffix:
        return None
    return EXTRA_EXTENSIONS.get(suffix) or mimetypes.types_map.get(suffix)


def undecodable_reason(mime_type: str | None, name: str = "") -> str | None:
    """None when the image stage can decode this type, else the skip reason ("mime image/svg+xml").

    Without a declared type, the extension of `name` decides; with neither, the row is kept and the
    image stage reports what it finds.
    """
    mime = (mime_type or "").strip().lower() or mime_from_name(name)
    if mime is None or mime in DECODABLE_MIME_TYPES:
        return None
    return f"mime {mime}"
