"""Names the reason an image failed, from img2dataset's error message."""

from __future__ import annotations

import re

HTTP_STATUS = re.compile(r"HTTP Error (\d{3})")
# (substring of img2dataset's / urllib's message, reason), first match wins.
REASONS: list[tuple[str, str]] = [
    ("timed out", "timeout"),
    ("No such file or directory", "missing_file"),
    ("Is a directory", "missing_file"),
    ("Image decoding error", "corrupt_image"),
    ("cannot identify image", "corrupt_image"),
    ("image area too large", "image_too_large"),
    ("image too small", "image_too_small"),
    ("aspect ratio too large", "aspect_ratio_too_large"),
    ("X-Robots-Tag", "disallowed_by_x_robots_tag"),
    ("Connection refused", "connection_refused"),
    ("Name or service not known", "dns_failure"),
    ("Remote end closed connection", "connection_closed"),
    ("urlopen error", "connection_error"),
    ("unknown url type", "unsupported_url"),
]


def failure_reason(message: str | None) -> str:
    """A short, stable reason name for an img2dataset error message."""
    if not message:
        return "unknown"
    status = HTTP_STATUS.search(message)
    if status:
        return f"http_{status.group(1)}"
    for fragment, reason in REASONS:
        if fragment.lower() in message.lower():
            return reason
    return "other"
