"""Runs img2dataset.download with a JSON file of arguments, in its own process.

img2dataset starts its workers with the `spawn` context, which re-imports the caller's main module;
running it as `python -m capbuild.images.download ARGS.json` behind a __main__ guard keeps that safe
however capbuild itself was started (console script, `python -c`, a notebook).

With the pyspark distributor, the Spark session is made here, on the master that
CAPBUILD_SPARK_MASTER names (a cluster's spark://, yarn, k8s://, or local[N]), because img2dataset
uses the active session and would otherwise start its own local one.
"""

import json
import os
import sys

from capbuild.images.stage import SPARK_MASTER_ENV


def main(args_path: str) -> None:
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import img2dataset

    with open(args_path, encoding="utf-8") as f:
        args = json.load(f)
    master = os.environ.get(SPARK_MASTER_ENV)
    if args.get("distributor") != "pyspark" or not master:
        img2dataset.download(**args)
        return
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.master(master).appName("capbuild-images").getOrCreate()
    try:
        img2dataset.download(**args)
    finally:
        spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])
