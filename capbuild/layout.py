"""Every path of a build folder, in one place.

OUT/
  captions/part-*.parquet     the caption table
  rejected/part-*.parquet     dropped rows; rejected/images/ dropped images
  shards/00000.tar ...        WebDataset shards, sizes.json
  embeddings/                 the image filters' embeddings
  manifest.json               config, versions, stages, counts
  README.md                   the dataset card
  .work/                      work files of unfinished stages (removed when a build finishes)

paths = BuildLayout(Path("it-wit"))
paths.captions, paths.shards, paths.manifest, paths.work / "images"
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CAPTIONS = "captions"
REJECTED = "rejected"
REJECTED_IMAGES = "images"
SHARDS = "shards"
EMBEDDINGS = "embeddings"
MANIFEST = "manifest.json"
CARD = "README.md"
WORK = ".work"
SIZES = "sizes.json"
# What capbuild writes in OUT (and so what --overwrite removes); nothing else there is touched.
OWNED = (CAPTIONS, REJECTED, SHARDS, EMBEDDINGS, WORK, MANIFEST, CARD)
# What `publish` uploads from the build folder (rejected/ and work files stay local).
PUBLISHED = (CARD, MANIFEST, CAPTIONS, SHARDS)


@dataclass(frozen=True)
class BuildLayout:
    """The paths of one build folder."""

    root: Path

    @property
    def captions(self) -> Path:
        return self.root / CAPTIONS

    @property
    def rejected(self) -> Path:
        return self.root / REJECTED

    @property
    def rejected_images(self) -> Path:
        return self.root / REJECTED / REJECTED_IMAGES

    @property
    def shards(self) -> Path:
        return self.root / SHARDS

    @property
    def sizes(self) -> Path:
        return self.root / SHARDS / SIZES

    @property
    def embeddings(self) -> Path:
        return self.root / EMBEDDINGS

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def card(self) -> Path:
        return self.root / CARD

    @property
    def work(self) -> Path:
        return self.root / WORK

    def owned(self) -> list[Path]:
        """The paths capbuild may write or remove in this folder."""
        return [self.root / name for name in OWNED]

    def holds_outputs(self) -> bool:
        """Whether the folder holds any output of a build besides the manifest and the work folder."""
        return any((self.root / name).exists() for name in OWNED if name not in (MANIFEST, WORK))


def join(out: str | Path, *names: str) -> str:
    """A path or URL inside a build folder, as the user wrote the folder (`s3://b/x` + `captions`)."""
    return "/".join([str(out).rstrip("/"), *names])
