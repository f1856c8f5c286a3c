"""How the image stage fetches and stores images (no heavy imports: the CLI reads these fields)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from capbuild.errors import ConfigError
from capbuild.options import opt, output_fields

RESIZE_MODES = ("no", "border", "keep_ratio", "keep_ratio_largest", "center_crop")
DISTRIBUTORS = ("multiprocessing", "pyspark", "ray")
# Wikimedia (all of WIT's images) answers bursts with 429; 10 requests/s per host stays clear of it.
DEFAULT_PER_HOST_RPS = 10.0


@dataclass
class ImageOptions:
    """How images are fetched and stored. Only the output-deciding fields enter the fingerprint."""

    image_size: int = field(default=256, metadata=opt("Side of the resized images, in pixels."))
    resize_mode: str = field(default="border", metadata=opt(f"img2dataset resize mode: {', '.join(RESIZE_MODES)}."))
    shard_size: int = field(default=10_000, metadata=opt("Samples per WebDataset shard."))
    encode_quality: int = field(default=95, metadata=opt("JPEG quality of the stored images.", cli=False))
    max_image_pixels: int = field(default=89_478_485, metadata=opt("Largest image area decoded.", cli=False))
    processes: int = field(default=1, metadata=opt("img2dataset worker processes.", operational=True))
    threads: int = field(default=16, metadata=opt("Download threads per process.", operational=True))
    timeout: int = field(default=10, metadata=opt("Seconds before an image download is abandoned.", operational=True))
    retries: int = field(default=0, metadata=opt("Extra download attempts for a failed image.", operational=True))
    per_host_rps: float = field(
        default=DEFAULT_PER_HOST_RPS,
        metadata=opt(
            "Most requests per second to one host, whole build (0: no limit); 429/503 Retry-After is always honoured.",
            operational=True,
        ),
    )
    user_agent_token: str | None = field(
        default=None,
        metadata=opt(
            "Token naming your crawler in the User-Agent header (X-Robots-Tag directives aimed at it are honoured).",
            flag="--user-agent",
            operational=True,
        ),
    )
    distributor: str = field(
        default="multiprocessing",
        metadata=opt(f"img2dataset distributor for the image stage: {', '.join(DISTRIBUTORS)}.", operational=True),
    )
    spark_master: str | None = field(
        default=None, metadata=opt("Spark master for --distributor pyspark.", operational=True)
    )
    ray_address: str | None = field(
        default=None, metadata=opt("Ray cluster for --distributor ray.", operational=True, cli=False)
    )

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ConfigError(f"--resize-mode must be one of {', '.join(RESIZE_MODES)} (got {self.resize_mode!r})")
        if self.distributor not in DISTRIBUTORS:
            raise ConfigError(f"--distributor must be one of {', '.join(DISTRIBUTORS)} (got {self.distributor!r})")
        if self.image_size <= 0 or self.shard_size <= 0:
            raise ConfigError("--image-size and --shard-size must be positive")

    def output_config(self) -> dict[str, Any]:
        return output_fields(self)
