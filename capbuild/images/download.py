"""Runs img2dataset.download with a JSON file of arguments, in its own process.

img2dataset starts its workers with the `spawn` context, which re-imports the caller's main module;
running it as `python -m capbuild.images.download ARGS.json` behind a __main__ guard keeps that safe
however capbuild itself was started (console script, `python -c`, a notebook).
"""

import json
import os
import sys


def main(args_path: str) -> None:
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import img2dataset

    with open(args_path, encoding="utf-8") as f:
        img2dataset.download(**json.load(f))


if __name__ == "__main__":
    main(sys.argv[1])
