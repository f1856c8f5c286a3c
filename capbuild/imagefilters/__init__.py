"""Image filters: one pass of a CLIP-like model (and a perceptual hash) over a build's shards, then
CLIP score, top fraction, near-duplicate, perceptual-hash and image-decontamination filters.

    run_image_filters(out, ["clip_score=0.25:caption_orig", "near_dup=0.95"], "open_clip:ViT-B-32:FILE")

The names below load on first use, so that importing the options (as the CLI does) stays light.
"""

from __future__ import annotations

from capbuild.lazy import lazy_exports

_EXPORTS = {
    "ImageFilterOptions": "capbuild.imagefilters.options",
    "ImageFilterRequest": "capbuild.imagefilters.options",
    "ImageFilterSpec": "capbuild.imagefilters.specs",
    "parse_image_filters": "capbuild.imagefilters.specs",
    "run_image_filters": "capbuild.imagefilters.stage",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
