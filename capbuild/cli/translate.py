"""`capbuild translate convert|run`: the translation commands beside the build commands."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer

from capbuild.cli.errors import report_errors
from capbuild.cli.groups import TRANSLATION_FIELDS
from capbuild.cli.output import console
from capbuild.cli.params import field_parameters, field_values, parameter, signature
from capbuild.stages.text.options import TextOptions

translate_app = typer.Typer(
    help="Machine translation with CTranslate2: convert models, re-translate builds.",
    epilog="Example: capbuild translate convert --model Helsinki-NLP/opus-mt-en-it --out opus-mt-en-it-ct2/",
    no_args_is_help=True,
)
# `translate run` re-translates with the build's recorded options; any given here replace them.
RUN_FIELDS = tuple(name for name in TRANSLATION_FIELDS if name not in ("translate", "src_lang"))


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
    from capbuild.translate.rerun import recorded_options, retranslate_build, translated_into

    overrides = field_values(TextOptions, given, RUN_FIELDS, drop_none=True)
    options = TextOptions(**{**recorded_options(read_manifest(out)), **overrides})
    with existing_build(out, upload=True) as folder:
        manifest = retranslate_build(folder, options, lang)
    text = manifest["counts"]["text"]
    console.print(
        f"done: {text['captions']} captions in {translated_into(manifest)}, {text['rejected']} rejected "
        f"(see {out}/rejected); shards removed: re-run the build command (as first given, or with these --mt-* "
        "options) to make them",
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
    field_parameters(TextOptions, RUN_FIELDS, optional=True),
)
translate_app.command(
    "run", epilog="Example: capbuild translate run ar-coco/ --mt-model nllb-200-distilled-600M-ct2/ --beam-size 4"
)(run)
