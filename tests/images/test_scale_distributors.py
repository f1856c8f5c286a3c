"""img2dataset's distributors: the pyspark one (local[2]) writes the samples multiprocessing writes."""

import json

import pytest

from capbuild.build import BuildRequest, run_build
from capbuild.builders.coco import CocoBuilder
from capbuild.images.stage import ImageOptions, distributor_env, run_image_stage
from tests.images import jpeg_bytes, write_coco_for_urls

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def caption_table(tmp_path_factory):
    """A caption table of 10 file:// images and one missing file."""
    root = tmp_path_factory.mktemp("table")
    site = root / "site"
    site.mkdir()
    for i in range(10):
        (site / f"{i}.jpg").write_bytes(jpeg_bytes((20 * i, 90, 200)))
    urls = [(site / f"{i}.jpg").as_uri() for i in range(10)] + [(site / "missing.jpg").as_uri()]
    captions = write_coco_for_urls(root / "captions.json", urls)
    run_build(BuildRequest(builder=CocoBuilder(inputs=[captions]), out=root / "build", images=None))
    return root / "build" / "captions"


def _image_stage(caption_table, out, distributor):
    options = ImageOptions(image_size=32, shard_size=4, processes=2, threads=2, distributor=distributor)
    counts = run_image_stage(caption_table, out, out / "work", options)
    return counts, (out / "work" / "img2dataset.log").read_text()


def test_distributor_is_operational_and_reaches_img2dataset():
    spark = ImageOptions(distributor="pyspark", processes=3)
    assert spark.output_config() == ImageOptions().output_config()
    assert distributor_env(spark)["CAPBUILD_SPARK_MASTER"] == "local[3]"
    assert distributor_env(ImageOptions(distributor="ray", ray_address="ray://head:10001")) == {
        "RAY_ADDRESS": "ray://head:10001"
    }
    with pytest.raises(ValueError, match="--distributor must be one of multiprocessing, pyspark, ray"):
        ImageOptions(distributor="dask")


def test_pyspark_distributor_writes_the_samples_of_multiprocessing(caption_table, tmp_path):
    pytest.importorskip("pyspark", reason="the scale extra (pyspark) is not installed: pip install 'capbuild[scale]'")
    local, spark = tmp_path / "multiprocessing", tmp_path / "pyspark"
    local_counts, local_log = _image_stage(caption_table, local, "multiprocessing")
    spark_counts, spark_log = _image_stage(caption_table, spark, "pyspark")
    assert "Spark" in spark_log and "Spark" not in local_log, "img2dataset should have run on Spark"
    tars = sorted(p.name for p in (local / "shards").glob("*.tar"))
    assert tars == sorted(p.name for p in (spark / "shards").glob("*.tar")) and len(tars) == 3
    for tar in tars:
        assert (spark / "shards" / tar).read_bytes() == (local / "shards" / tar).read_bytes()
    assert json.loads((spark / "shards" / "sizes.json").read_text()) == json.loads(
        (local / "shards" / "sizes.json").read_text()
    )
    assert spark_counts == local_counts
    assert spark_counts["success"] == 10 and spark_counts["failed"] == {"missing_file": 1}
