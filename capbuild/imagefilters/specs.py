"""`--image-filter` specs: parsed once into frozen configs that say what they need (a model, the
source caption's embedding, perceptual hashes) and how a user writes them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from capbuild.errors import ConfigError
from capbuild.layout import BuildLayout

TEXT_COLUMNS = ("caption", "caption_orig")
# The score columns the image filters add to the caption table (and every sample's KEY.json).
IMAGE_SCORES = {"phash": pa.string(), "clip_score": pa.float32()}
DEFAULT_DECONTAMINATE_DISTANCE = 6
SPEC_HELP = (
    "clip_score=MIN[:caption|caption_orig], clip_top=FRACTION[:caption|caption_orig], near_dup=COS, "
    "phash=D, decontaminate_images=EVAL_OUT[:D]"
)


@dataclass(frozen=True)
class ImageFilterSpec(ABC):
    """One image filter. `name` is its spec name; `describe()` gives the spec back."""

    name: str

    @property
    def needs_model(self) -> bool:
        return False

    @abstractmethod
    def describe(self) -> str:
        """The spec as a user writes it."""


@dataclass(frozen=True)
class ClipScore(ImageFilterSpec):
    """Drop samples whose image-text cosine is below `minimum`; `text` picks the caption scored."""

    minimum: float
    text: str = "caption"

    @property
    def needs_model(self) -> bool:
        return True

    def describe(self) -> str:
        return f"clip_score={self.minimum:g}" + (":caption_orig" if self.text == "caption_orig" else "")


@dataclass(frozen=True)
class ClipTop(ImageFilterSpec):
    """Keep the best-scoring `fraction` of each split (DataComp's "top 30 %")."""

    fraction: float
    text: str = "caption"

    @property
    def needs_model(self) -> bool:
        return True

    def describe(self) -> str:
        return f"clip_top={self.fraction:g}" + (":caption_orig" if self.text == "caption_orig" else "")


@dataclass(frozen=True)
class NearDup(ImageFilterSpec):
    """Drop images whose embedding cosine with an earlier kept image is >= `cosine`."""

    cosine: float

    @property
    def needs_model(self) -> bool:
        return True

    def describe(self) -> str:
        return f"near_dup={self.cosine:g}"


@dataclass(frozen=True)
class PHash(ImageFilterSpec):
    """Drop images within Hamming distance `distance` (64-bit pHash) of an earlier kept image."""

    distance: int

    def describe(self) -> str:
        return f"phash={self.distance}"


@dataclass(frozen=True)
class DecontaminateImages(ImageFilterSpec):
    """Drop images within Hamming distance `distance` of any image of the build at `eval_out`."""

    eval_out: str
    distance: int = DEFAULT_DECONTAMINATE_DISTANCE

    def describe(self) -> str:
        return f"decontaminate_images={self.eval_out}:{self.distance}"


def parse_image_filters(specs: list[str]) -> list[ImageFilterSpec]:
    """Parse `--image-filter` values, failing with the accepted forms on a bad one."""
    parsed = [parse_image_filter(spec) for spec in specs]
    texts = {f.text for f in parsed if isinstance(f, (ClipScore, ClipTop))}
    if len(texts) > 1:
        raise ConfigError("clip_score and clip_top must score the same text (both :caption or both :caption_orig)")
    names = [f.name for f in parsed if not isinstance(f, DecontaminateImages)]
    if len(names) != len(set(names)):
        raise ConfigError(f"each image filter may appear once (got {', '.join(specs)})")
    return parsed


def parse_image_filter(spec: str) -> ImageFilterSpec:
    name, eq, arg = spec.partition("=")
    name = name.strip().replace("-", "_")
    if not eq or not arg:
        raise ConfigError(f"--image-filter {spec!r}: expected NAME=VALUE, one of {SPEC_HELP}")
    if name in ("clip_score", "clip_top"):
        value, _, text = arg.partition(":")
        text = text or "caption"
        if text not in TEXT_COLUMNS:
            raise ConfigError(f"--image-filter {spec!r}: the text scored is caption or caption_orig (got {text!r})")
        number = _number(spec, value)
        if name == "clip_score":
            if not -1.0 <= number <= 1.0:
                raise ConfigError(f"--image-filter {spec!r}: a cosine lies in [-1, 1]")
            return ClipScore(name, number, text)
        if not 0.0 < number <= 1.0:
            raise ConfigError(f"--image-filter {spec!r}: the fraction kept lies in (0, 1]")
        return ClipTop(name, number, text)
    if name == "near_dup":
        cosine = _number(spec, arg)
        if not 0.0 < cosine <= 1.0:
            raise ConfigError(f"--image-filter {spec!r}: the cosine lies in (0, 1]")
        return NearDup(name, cosine)
    if name == "phash":
        return PHash(name, _distance(spec, arg))
    if name == "decontaminate_images":
        folder, _, distance = arg.rpartition(":")
        if not folder or not distance.isdigit():
            folder, distance = arg, str(DEFAULT_DECONTAMINATE_DISTANCE)
        if not BuildLayout(Path(folder)).shards.is_dir():
            raise ConfigError(f"--image-filter {spec!r}: {folder} is not a capbuild build with shards/")
        return DecontaminateImages(name, folder, _distance(spec, distance))
    raise ConfigError(f"--image-filter {spec!r}: unknown image filter {name!r}; known: {SPEC_HELP}")


def _number(spec: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--image-filter {spec!r}: {text!r} is not a number") from None


def _distance(spec: str, text: str) -> int:
    if not text.strip().isdigit() or not 0 <= int(text) < 64:
        raise ConfigError(f"--image-filter {spec!r}: the Hamming distance is an integer in 0..63")
    return int(text)
