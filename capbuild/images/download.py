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
import shutil
import sys
from pathlib import Path

from capbuild.images import polite

# Spawned workers run this module's top level (as __mp_main__), not main(): politeness is installed
# here, from the environment main() sets before img2dataset starts them.
if polite.ENV_PACING_DIR in os.environ:
    polite.install(float(os.environ[polite.ENV_PER_HOST_RPS]) or None, Path(os.environ[polite.ENV_PACING_DIR]))

# Keys of the arguments file that are capbuild's, not img2dataset.download's.
PER_HOST_RPS_KEY = "capbuild_per_host_rps"
# The environment variable naming the Spark master for the pyspark distributor.
SPARK_MASTER_ENV = "CAPBUILD_SPARK_MASTER"


def main(args_path: str) -> None:
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import img2dataset

    with open(args_path, encoding="utf-8") as f:
        arguments = json.load(f)
    # The worker processes share the pacing files of this run's folder (see capbuild.images.polite).
    os.environ[polite.ENV_PER_HOST_RPS] = str(arguments.pop(PER_HOST_RPS_KEY, None) or 0.0)
    pacing = Path(args_path).parent / "pacing"
    shutil.rmtree(pacing, ignore_errors=True)
    os.environ[polite.ENV_PACING_DIR] = str(pacing)
    if arguments.get("distributor", "multiprocessing") == "multiprocessing":
        from capbuild.images.writer import use_table_order_writer

        use_table_order_writer()
    master = os.environ.get(SPARK_MASTER_ENV)
    if arguments.get("distributor") != "pyspark" or not master:
        img2dataset.download(**arguments)
        return
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.master(master).appName("capbuild-images").getOrCreate()
    try:
        img2dataset.download(**arguments)
    finally:
        spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])
