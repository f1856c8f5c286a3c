"""Encoded image bytes -> an RGB uint8 (3, H, W) tensor, the one decode of the embedding pass.

JPEGs are decoded by TorchCodec (libjpeg-turbo straight into a tensor: the same pixels as PIL's decode,
1.3-1.7x faster than it and its copy into a tensor); anything else, a JPEG TorchCodec refuses, and every
JPEG where TorchCodec cannot be loaded (a torch it was not built for), by PIL. PIL reads the header
first either way, so a decompression bomb is refused before any pixel is decoded.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable

import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF


class UndecodableImage(ValueError):
    """The bytes are no image PIL or TorchCodec can decode (or one too large to be safe)."""


@functools.cache
def jpeg_decoder() -> Callable[..., torch.Tensor] | None:
    """TorchCodec's decode_jpeg, or None where it cannot be loaded."""
    try:
        from torchcodec.decoders import decode_jpeg
    except (ImportError, OSError, RuntimeError):
        return None
    return decode_jpeg


def decode_rgb(data: bytes) -> torch.Tensor:
    """RGB uint8 (3, H, W); raises UndecodableImage."""
    try:
        image = Image.open(io.BytesIO(data))  # the header only
        decode_jpeg = jpeg_decoder() if image.format == "JPEG" else None
        if decode_jpeg is not None:
            try:
                return decode_jpeg(data, mode="RGB")
            except RuntimeError:
                pass  # PIL has the last word on what is undecodable
        return TF.pil_to_tensor(image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise UndecodableImage(str(error)) from error
