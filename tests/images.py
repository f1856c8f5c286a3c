"""Small test images made on the fly."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image


def jpeg_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (48, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def write_coco_for_urls(path: Path, urls: list[str]) -> Path:
    """A COCO captions file with one image per URL, captioned 'image N of the test set'."""
    images = [{"id": i, "file_name": f"{i}.jpg", "coco_url": url} for i, url in enumerate(urls, 1)]
    annotations = [{"id": i, "image_id": i, "caption": f"image {i} of the test set"} for i in range(1, len(urls) + 1)]
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return path
