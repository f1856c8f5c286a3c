"""`capbuild translate convert|run`: the translation commands beside the build commands."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer

from capbuild.cli.errors import report_errors
from capbuild.cli.groups import TRANSLATION_OPTIONS
from capbuild.cli.output import console
from capbuild.cli.params import parameter, signature
from capbuild.errors import ConfigError

translate_app = typer.Typer(
    help="Machine translation with CTranslate2: convert models, re-translate builds.",
    epilog="Example: capbuild translate convert --model Helsinki-NLP/opus-mt-en-it --out opus-mt-en-it-ct2/",
    no_args_is_help=True,
)
# `translate run` re-translates with the build's recorded options; any given here replace them.
RUN_OPTIONS = [o for o in TRANSLATION_OPTIONS if o.name not in ("translate", "src_lang")]


@translate_app.command(
    epilog="Example: capbuild translate convert --model Helsinki-NLP/opus-mt-en-it --out opus-mt-en-it-ct2/"
)
@report_errors
def convert(
    model: Annotated[str, typer.Option("--model", "-m", help="Hugging Face model folder or name.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the CTranslate2 model and its tokenizer.")],
    quantization: Annotated[str, typer.Option("--quantization", help="int8, float16, float32, ...")] = "int8",
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out.")] = False,
) -> None:
    """Convert a MarianMT (OPUS-MT), NLLB-200 or M2M100 model to CTranslate2, tokenizer beside it."""
    from capbuild.translate.convert import convert_model

    info = convert_model(model, out, quantization=quantization, force=force)
    console.print(f"converted {info.name} ({info.family}, fingerprint {info.fingerprint}) -> {out}", markup=False)


@report_errors
def run(out: str, lang: str | None, **given: Any) -> None:
    """Re-translate an existing build's caption table in place (the source captions it kept), with the
    build's recorded translation options unless given here."""
    from capbuild.storage import existing_build, read_manifest
    from capbuild.translate.rerun import retranslate_build

    recorded = read_manifest(out).get("config", {}).get("filter_options", {})
    target = lang or recorded.get("target_lang")
    if not target:
        raise ConfigError(f"{out} was not translated before: give the target language with --lang")
    defaults = {o.name: recorded.get(o.name, o.default) for o in RUN_OPTIONS}
    options = {**defaults, **{k: v for k, v in given.items() if v is not None}, "target_lang": target}
    with existing_build(out, upload=True) as folder:
        manifest = retranslate_build(folder, options)
    text = manifest["counts"]["text"]
    console.print(
        f"done: {text['captions']} captions in {target}, {text['rejected']} rejected "
        f"(see {out}/rejected); shards removed: re-run the build command with the same --mt-* options to make them",
        markup=False,
    )


run.__signature__ = signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter(
            "out",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[str, typer.Argument(help="Build folder or URL: what the build's --out named.")],
        ),
        parameter("lang", str | None, None, ("--lang",), "Target language (default: the build's)."),
    ],
    [parameter(o.name, o.kind | None, None, o.flags, f"{o.help} Default: the build's.") for o in RUN_OPTIONS],
)
translate_app.command(
    "run", epilog="Example: capbuild translate run ar-coco/ --mt-model nllb-200-distilled-600M-ct2/ --beam-size 4"
)(run)
