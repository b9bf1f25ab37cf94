"""The profile section of RESULTS.md: py-spy's self time by layer, before and after.

"Before" is `bench/results/profile-before.json`, recorded once from the main of 2026-11-29
(1e4aec3, before issue #15's work) with `python -m bench.profile --json` (and `--stream`) on
the same machine; "after" is this run's `profile` scenario (bench/profile.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BEFORE_JSON = Path(__file__).parent / "results" / "profile-before.json"
#: The optimisations and what each measured (written by hand, shown after the profile).
OPTIMISATIONS_MD = Path(__file__).parent / "optimisations.md"


def _before() -> dict[str, Any]:
    try:
        return json.loads(BEFORE_JSON.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return {}


def md_profile(r: dict[str, Any]) -> list[str]:
    after = r.get("profile")
    if not after:
        return []
    before = _before()
    cases = [c for c in ("chat", "stream") if c in after]
    layers: list[str] = []
    for case in cases:
        for source in (before.get(case) or {}, after[case]):
            for name in source.get("layers", {}):
                if name not in layers:
                    layers.append(name)
    head = " | ".join(f"{c} before | {c} after" for c in cases)
    lines = [
        "",
        "## Profile (`--only profile`, bench/profile.py)",
        "",
        "py-spy (`record --nonblocking`, ~1 kHz) on the llm-backends process while 32 clients "
        "load it (chat, then streams; OpenAI protocol, instant mock). Share of the process's "
        "samples by layer, attributed to the innermost frame of a known layer (a C call counts "
        "for the Python code that made it). *Before* is main at 1e4aec3, recorded the same "
        f"way on this machine (`{BEFORE_JSON.name}`).",
        "",
        f"| layer (% of samples) | {head} |",
        "|---|" + "---:|" * (2 * len(cases)),
    ]
    for name in layers:
        cells = []
        for case in cases:
            for source in (before.get(case) or {}, after[case]):
                share = source.get("layers", {}).get(name)
                cells.append("-" if share is None else f"{share:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    rps = []
    for case in cases:
        for label, source in (("before", before.get(case) or {}), ("after", after[case])):
            value = (source.get("load") or {}).get("rps")
            if value is not None:
                rps.append(f"{case} {label} {value:,.0f}")
    if rps:
        lines += ["", "Load while sampled (req/s, py-spy attached): " + ", ".join(rps) + "."]
    for case in cases:
        top = after[case].get("functions") or []
        if top:
            lines += ["", f"Where the remaining time goes ({case}, after; self time, %):", ""]
            lines += [f"- {share:.1f} `{name}`" for name, share in top[:10]]
    if OPTIMISATIONS_MD.exists():
        lines += ["", *OPTIMISATIONS_MD.read_text().rstrip().splitlines()]
    return lines
