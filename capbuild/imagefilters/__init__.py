"""Image filters: one pass of a CLIP-like model (and a perceptual hash) over a build's shards, then
CLIP score, top fraction, near-duplicate, perceptual-hash and image-decontamination filters.

    run_image_filters(out, ["clip_score=0.25:caption_orig", "near_dup=0.95"], "open_clip:ViT-B-32:FILE")
"""

from capbuild.imagefilters.specs import ImageFilterSpec, parse_image_filters
from capbuild.imagefilters.stage import ImageFilterOptions, ImageFilterRequest, run_image_filters

__all__ = ["ImageFilterOptions", "ImageFilterRequest", "ImageFilterSpec", "parse_image_filters", "run_image_filters"]
