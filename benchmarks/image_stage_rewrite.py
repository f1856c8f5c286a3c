"""How much the image stage's shard rewrite (table order, table keys) adds to img2dataset's own time.

Builds N drawn images into a COCO-layout file and runs the image stage on them (file:// URLs),
timing img2dataset and the rewrite separately in the same run.

    .venv/bin/python benchmarks/image_stage_rewrite.py --images 2000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from PIL import Image

from capbuild.build import BuildRequest, run_build
from capbuild.builders.coco import CocoBuilder
from capbuild.images import stage
from capbuild.images.stage import ImageOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--shard-size", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "img").mkdir()
        images, annotations = [], []
        for i in range(args.images):
            Image.new("RGB", (320, 240), (i % 255, (7 * i) % 255, (13 * i) % 255)).save(root / "img" / f"{i}.jpg")
            images.append({"id": i, "file_name": f"{i}.jpg"})
            annotations.append({"id": i, "image_id": i, "caption": f"a picture numbered {i}"})
        (root / "captions.json").write_text(json.dumps({"images": images, "annotations": annotations}))

        timings: dict[str, float] = {}
        for name in ("_run_img2dataset", "_rewrite_shard"):
            original = getattr(stage, name)

            def timed(*a, _original=original, _name=name, **k):
                started = time.perf_counter()
                try:
                    return _original(*a, **k)
                finally:
                    timings[_name] = timings.get(_name, 0.0) + time.perf_counter() - started

            setattr(stage, name, timed)
        builder = CocoBuilder(inputs=[root / "captions.json"], image_dirs=[root / "img"])
        options = ImageOptions(image_size=256, shard_size=args.shard_size, processes=2, threads=8)
        run_build(BuildRequest(builder=builder, out=root / "out", images=options))
    download, rewrite = timings["_run_img2dataset"], timings["_rewrite_shard"]
    print(f"images: {args.images}")
    print(f"img2dataset (file://, resize to 256): {download:.2f} s, {args.images / download:.0f} images/s")
    print(f"shard rewrite: {rewrite:.2f} s, {args.images / rewrite:.0f} images/s")
    print(f"rewrite / img2dataset: {rewrite / download:.3f}")


if __name__ == "__main__":
    main()
