"""gpu.md: the figures of gpu.json as Markdown ready to paste into BENCHMARKS.md, with the published
reference figures beside them."""

from __future__ import annotations

import re
from typing import Any

REFERENCES = [
    {
        "what": "CTranslate2's README: OPUS-MT en-de on newstest2014, NVIDIA A10G, its benchmark scripts' settings",
        "figures": "int8 7,522 and float16 9,297 target tokens/s; transformers (PyTorch) 1,023 target tokens/s",
    },
    {
        "what": "LAION-translated (laion2B-multi to English), M2M100-1.2B",
        "figures": "34 samples/s per GPU",
    },
]

# (header, key, format) per part
COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    "translation": [
        ("compute", "compute_type", "{}"),
        ("batching", "batching", "{}"),
        ("sentences", "sentences", "{:,}"),
        ("sentences/s", "sentences_per_s", "{:,.0f}"),
        ("target tokens/s", "target_tokens_per_s", "{:,.0f}"),
        ("outputs at bound", "outputs_at_bound", "{:.0%}"),
        ("GPU util %", "gpu_util_percent", "{:.0f}"),
        ("GPU memory MiB", "gpu_memory_peak_mib", "{:,}"),
        ("CC3M 3.3M captions, h", "cc3m_hours", "{:.2f}"),
    ],
    "training": [
        ("samples/s", "samples_per_s", "{:,.1f}"),
        ("steps/s", "steps_per_s", "{:.2f}"),
        ("timed steps", "timed_steps", "{}"),
        ("GPU util %", "gpu_util_percent", "{:.0f}"),
        ("GPU memory MiB", "gpu_memory_peak_mib", "{:,}"),
        ("last loss", "last_loss", "{:.3f}"),
    ],
    "embedding": [
        ("images", "images", "{:,}"),
        ("images/s", "images_per_s", "{:,.0f}"),
        ("GPU util %", "gpu_util_percent", "{:.0f}"),
        ("GPU memory MiB", "gpu_memory_peak_mib", "{:,}"),
    ],
}
BASELINE = "transformers generate fp16"  # the translation run the others are compared with
TITLES = {
    "translation": "Translation",
    "training": "Training (`capbuild train`)",
    "embedding": "Image-filter embedding pass",
}


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "n/a"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def _environment(env: dict[str, Any]) -> str:
    packages = env.get("packages", {})
    versions = ", ".join(f"{name} {version}" for name, version in packages.items() if version)
    gpu = f"{env['gpu']} ({env.get('gpu_memory_mib', 0):,} MiB), driver {env['driver']} (CUDA {env.get('driver_cuda')})"
    where = gpu if env.get("gpu") else "no GPU (CPU)"
    return f"{where}; {env.get('cpu_count')} CPU cores; Python {env.get('python')}; {versions}"


def _probe_lines(probe: dict[str, dict[str, Any]]) -> list[str]:
    """How each attempt to run CTranslate2 on the GPU went (ct2_cuda.py)."""
    lines = []
    for attempt, outcome in probe.items():
        if outcome.get("ok"):
            lines.append(
                f"- CTranslate2 CUDA libraries, {attempt}: loaded; first outputs after "
                f"{outcome.get('seconds_to_first_outputs')} s; first 4 tokens equal to the CPU's: "
                f"{outcome.get('first_4_tokens_equal_to_cpu', 0):.0%}"
            )
        else:
            lines.append(f"- CTranslate2 CUDA libraries, {attempt}: failed: {outcome.get('error')}")
    return lines


def _part(name: str, part: dict[str, Any]) -> list[str]:
    lines = [f"### {TITLES.get(name, name)}", ""]
    setup = {k: v for k, v in part.get("setup", {}).items() if not isinstance(v, dict)}
    if setup:
        lines += ["Setup: " + "; ".join(f"{k.replace('_', ' ')} {v}" for k, v in setup.items()), ""]
    lines += _probe_lines(part.get("setup", {}).get("ct2_probe", {}))
    columns = list(COLUMNS.get(name, []))
    figures = part.get("figures", {})
    baseline = figures.get(BASELINE, {}).get("target_tokens_per_s") if name == "translation" else None
    if baseline:
        figures = {run: {**v, "vs_baseline": v["target_tokens_per_s"] / baseline} for run, v in figures.items()}
        columns.insert(5, ("vs transformers", "vs_baseline", "{:.1f}x"))
    if figures:
        if lines[-1]:
            lines.append("")
        align = "".join("|---" if fmt == "{}" else "|---:" for _, _, fmt in columns)  # text left, numbers right
        lines += ["| run | " + " | ".join(h for h, _, _ in columns) + " |", f"|---{align}|"]
        for run, values in figures.items():
            lines.append(f"| {run} | " + " | ".join(_cell(values.get(k), f) for _, k, f in columns) + " |")
        lines.append("")
    lines += [f"- skipped **{run}**: {reason}" for run, reason in part.get("skipped", {}).items()]
    lines += [f"- note: {note}" for note in part.get("notes", [])]
    if part.get("failed"):
        lines.append(f"- **failed**: {part['failed']}")
    return [*lines, ""]


def render(report: dict[str, Any]) -> str:
    lines = [
        f"## GPU figures ({report['mode']}, {report['started']})",
        "",
        _environment(report["environment"]),
        "",
    ]
    for name, part in report["parts"].items():
        lines += _part(name, part)
    lines += ["### Published figures to compare with", "", "| what | figures |", "|---|---|"]
    lines += [f"| {ref['what']} | {ref['figures']} |" for ref in report["references"]]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"
