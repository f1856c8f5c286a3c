"""`capbuild translate convert|run`: the translation commands beside the build commands."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from capbuild.cli_params import dataclass_options, dataclass_values
from capbuild.stages.text.options import TextOptions

# `translate run` takes the build commands' --mt-model, --beam-size and --mt-* options.
RUN_OPTIONS = [
    p
    for p in dataclass_options(TextOptions)
    if p.name == "mt_model" or p.name == "beam_size" or p.name.startswith("mt_")
]

translate_app = typer.Typer(help="Machine translation with CTranslate2: convert models, re-translate builds.")
console = Console(stderr=True)


@translate_app.command(
    epilog="Example: capbuild translate convert --model Helsinki-NLP/opus-mt-en-it --out opus-mt-en-it-ct2/"
)
def convert(
    model: Annotated[str, typer.Option("--model", "-m", help="Hugging Face model folder or name.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the CTranslate2 model and its tokenizer.")],
    quantization: Annotated[str, typer.Option("--quantization", help="int8, float16, float32, ...")] = "int8",
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out.")] = False,
) -> None:
    """Convert a MarianMT (OPUS-MT), NLLB-200 or M2M100 model to CTranslate2, tokenizer beside it."""
    from capbuild.translate.convert import convert_model

    with _errors():
        info = convert_model(model, out, quantization=quantization, force=force)
        console.print(f"[bold green]converted[/] {info.name} ({info.family}, fingerprint {info.fingerprint}) -> {out}")


def _run(out: Path, lang: str | None, **options: Any) -> None:
    from capbuild.translate.rerun import retranslate_build, translated_into

    with _errors():
        manifest = retranslate_build(out, dataclass_values(TextOptions, options), lang)
        text = manifest["counts"]["text"]
        console.print(
            f"[bold green]done[/]: {text['captions']} captions in {translated_into(manifest)}, {text['rejected']} "
            f"rejected (see {out / 'rejected'}); shards removed: re-run the build command (as first given, or "
            "with these --mt-* options) to make them",
            markup=True,
        )


_run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter(
            "out",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[Path, typer.Argument(help="Build folder.")],
        ),
        inspect.Parameter(
            "lang",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[str | None, typer.Option("--lang", help="Target language (default: the build's).")],
        ),
        *RUN_OPTIONS,
    ]
)
_run.__doc__ = "Re-translate an existing build's caption table in place (the source captions it kept)."
translate_app.command(
    "run", epilog="Example: capbuild translate run ar-coco/ --mt-model nllb-200-distilled-600M-ct2/ --beam-size 4"
)(_run)


class _errors:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _tb: Any) -> bool:
        if isinstance(error, (ValueError, OSError, RuntimeError)):
            console.print(f"[bold red]error:[/] {error}")
            raise typer.Exit(2)
        return False
