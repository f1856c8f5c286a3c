"""The step types of the text stage's plan, and the registry that `--filter NAME[=ARG]` reads.

A step is a frozen dataclass config: its parameters as fields (operational ones marked with
`opt(..., operational=True)`), the score columns it adds with their Arrow types, and `build()`,
which makes the runnable step (a `capbuild.filters.base.Runner`; models load on first use).
Two kinds, told apart by type: a `Rewriter` changes text and keeps its rows, a `Filter` keeps or
drops rows with a value. Adding a step is one config class decorated with `@register_step`:

    @register_step
    @dataclass(frozen=True)
    class MinChars(Filter):
        name: ClassVar[str] = "min-chars"
        minimum: int = field(default=3, metadata=opt("Fewest characters kept."))

        @classmethod
        def from_spec(cls, arg, lang, options):
            return cls(int(arg or 3))

        def build(self) -> Runner:
            return MinCharsRunner(self.minimum)
"""

from __future__ import annotations

import dataclasses
import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from capbuild.errors import ConfigError
from capbuild.options import output_fields
from capbuild.stages.text.options import TextOptions

if TYPE_CHECKING:
    from capbuild.filters.base import Runner


@dataclass(frozen=True)
class Step(ABC):
    """A step's config. Subclasses set `name` (the spec name users type) and, when they add columns
    to the caption table, `scores` (column -> Arrow type)."""

    name: ClassVar[str]
    kind: ClassVar[str]
    scores: ClassVar[dict[str, pa.DataType]] = {}
    # True when a row's verdict depends on rows of earlier batches (dedup): the executors then run
    # the step in one process over the partitions in order.
    stateful: ClassVar[bool] = False
    # False for a step the plan adds itself (translate and its checks), which no spec may name.
    named: ClassVar[bool] = True
    # For a step that no spec may name: the option that adds it (named in the unknown-filter error).
    added_by: ClassVar[str] = "--translate"

    @classmethod
    def from_spec(cls, arg: str | None, lang: str, options: TextOptions) -> Step:
        """The step of '--filter NAME=ARG' (arg None without '='), for captions in `lang`."""
        if arg is not None:
            raise ConfigError(f"filter {cls.name!r} takes no argument (got {cls.name}={arg})")
        return cls()

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> Step:
        """The step from the `options` of its config() record (operational fields take their defaults)."""
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for field in dataclasses.fields(cls):
            if field.name in options:
                value, hint = options[field.name], hints[field.name]
                if isinstance(value, dict) and dataclasses.is_dataclass(hint):
                    value = hint(**value)
                kwargs[field.name] = value
        return cls(**kwargs)

    @abstractmethod
    def build(self) -> Runner:
        """The runnable step (built where it runs: in process or on a Ray worker)."""

    def describe(self) -> str:
        """The step as a user writes it, for the manifest and the dataset card."""
        return self.name

    def check(self) -> None:
        """Fail with a clear error, before the build writes anything, when what the step needs (a model,
        an extra, a file) is missing. Nothing to check by default."""
        return None

    @property
    def uses_gpu(self) -> bool:
        """Whether the Ray executor should pin each of this step's workers to one GPU."""
        return False

    def error_budget(self) -> float | None:
        """For a model-backed step: the share of its captions that may fail before the build stops."""
        return None

    def config(self) -> dict[str, Any]:
        """The output-deciding record of the step (operational fields left out)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "spec": self.describe(),
            "options": output_fields(self),
            "scores": {name: str(dtype) for name, dtype in self.scores.items()},
        }


@dataclass(frozen=True)
class Rewriter(Step):
    """A step that changes text and keeps its rows (a caption left empty is the only drop)."""

    kind: ClassVar[str] = "rewriter"


@dataclass(frozen=True)
class Filter(Step):
    """A step that keeps or drops rows, recording the value each dropped row failed with."""

    kind: ClassVar[str] = "filter"


STEPS: dict[str, type[Step]] = {}


def register_step(cls: type[Step]) -> type[Step]:
    """Class decorator: make a step available to '--filter NAME[=ARG]' and '--post-filter NAME[=ARG]'."""
    STEPS[cls.name] = cls
    return cls


def parse_spec(spec: str) -> tuple[str, str | None]:
    """'len=3..60' -> ('len', '3..60'); 'dedup' -> ('dedup', None)."""
    name, sep, arg = spec.strip().partition("=")
    return name.strip(), (arg.strip() if sep else None)


def parse_step(spec: str, lang: str = "en", options: TextOptions | None = None) -> Step:
    """The step config of one spec, with a clear error for an unknown name."""
    load_builtin_steps()
    name, arg = parse_spec(spec)
    if name not in STEPS or not STEPS[name].named:
        known = ", ".join(sorted(n for n, cls in STEPS.items() if cls.named))
        hint = f" ({STEPS[name].added_by} adds it)" if name in STEPS else ""
        raise ConfigError(f"unknown filter {name!r} in {spec!r}{hint}; known filters: {known}")
    return STEPS[name].from_spec(arg, lang, options or TextOptions())


def load_builtin_steps() -> None:
    """Import the modules whose step configs register themselves."""
    import capbuild.filters.arabic
    import capbuild.filters.decontaminate
    import capbuild.filters.langid
    import capbuild.filters.pos
    import capbuild.filters.text
    import capbuild.translate.steps  # noqa: F401
