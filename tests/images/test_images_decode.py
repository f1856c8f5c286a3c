"""decode_rgb: every image the embedding pass reads, as RGB uint8 (3, H, W), or a clear refusal."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torchcodec", reason="JPEGs are decoded by TorchCodec: pip install 'capbuild[imagefilters]'")

from capbuild.images.decode import UndecodableImage, decode_rgb
from tests.imagefilter_data import draw_picture


def encoded(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def pil_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize(
    ("mode", "format", "options"),
    [
        ("RGB", "JPEG", {"quality": 90}),
        ("RGB", "JPEG", {"progressive": True}),
        ("L", "JPEG", {}),
        ("CMYK", "JPEG", {}),
        ("RGBA", "PNG", {}),
        ("P", "PNG", {}),
        ("RGB", "WEBP", {"quality": 80}),
    ],
)
def test_decodes_to_the_pixels_pil_gives(mode, format, options):
    data = encoded(draw_picture(4).resize((120, 90)).convert(mode), format, **options)
    pixels = decode_rgb(data)
    assert pixels.dtype.is_floating_point is False and tuple(pixels.shape) == (3, 90, 120)
    assert np.array_equal(pixels.permute(1, 2, 0).numpy(), pil_rgb(data))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        b"\xff\xd8\xff" + b"\x00" * 64,  # a JPEG marker, then nothing
        encoded(draw_picture(1), "JPEG")[:600],  # truncated
        encoded(draw_picture(1), "PNG")[:300],
    ],
    ids=["empty", "text", "jpeg-marker-only", "truncated-jpeg", "truncated-png"],
)
def test_what_is_no_image_is_refused_clearly(data):
    with pytest.raises(UndecodableImage):
        decode_rgb(data)


def test_a_decompression_bomb_is_refused_before_decoding(monkeypatch):
    data = encoded(draw_picture(2).resize((400, 400)), "JPEG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400 * 400 // 3)  # PIL refuses over twice this
    with pytest.raises(UndecodableImage, match="decompression bomb"):
        decode_rgb(data)


def test_jpegs_go_through_torchcodec_and_pil_decodes_them_where_it_cannot_load(monkeypatch):
    from capbuild.images import decode

    data = encoded(draw_picture(3), "JPEG")
    torchcodec_decode, calls = decode.jpeg_decoder(), []
    assert torchcodec_decode is not None

    def counted(*args, **options):
        calls.append(args)
        return torchcodec_decode(*args, **options)

    monkeypatch.setattr(decode, "jpeg_decoder", lambda: counted)
    through_torchcodec = decode_rgb(data)
    assert len(calls) == 1
    monkeypatch.setattr(decode, "jpeg_decoder", lambda: None)
    assert np.array_equal(decode_rgb(data).numpy(), through_torchcodec.numpy())
