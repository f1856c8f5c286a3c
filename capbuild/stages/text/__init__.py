"""The text stage: a plan of typed steps run over partitions of the caption table.

    from capbuild.stages.text import TextOptions, make_plan
    plan = make_plan("it", ["len=3..40", "propn=0.8"], ["dedup"], TextOptions(translate=True, mt_model="ct2/"))

Modules: options (TextOptions), steps (Step, Rewriter, Filter, register_step), plan (Plan, make_plan),
partitions, segments, executors (local, ray), stage (run_text_stage), records (manifest records).
The names below load on first use, so that importing TextOptions (as the CLI does) stays light.
"""

from __future__ import annotations

from capbuild.lazy import lazy_exports

_EXPORTS = {
    "TextOptions": "capbuild.stages.text.options",
    "Plan": "capbuild.stages.text.plan",
    "make_plan": "capbuild.stages.text.plan",
    "Filter": "capbuild.stages.text.steps",
    "Rewriter": "capbuild.stages.text.steps",
    "Step": "capbuild.stages.text.steps",
    "parse_step": "capbuild.stages.text.steps",
    "register_step": "capbuild.stages.text.steps",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
