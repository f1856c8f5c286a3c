"""The text stage: a plan of typed steps run over partitions of the caption table.

    from capbuild.stages.text import TextOptions, make_plan
    plan = make_plan("it", ["len=3..40", "propn=0.8"], ["dedup"], TextOptions(translate=True, mt_model="ct2/"))

Modules: options (TextOptions), steps (Step, Rewriter, Filter, register_step), plan (Plan, make_plan),
partitions, segments, executors (local, ray), stage (run_text_stage), records (manifest records).
"""

from capbuild.stages.text.options import TextOptions
from capbuild.stages.text.plan import Plan, make_plan
from capbuild.stages.text.steps import Filter, Rewriter, Step, parse_step, register_step

__all__ = ["Filter", "Plan", "Rewriter", "Step", "TextOptions", "make_plan", "parse_step", "register_step"]
