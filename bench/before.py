"""The "before" arm of issue #15: the project's code at `COMMIT`, served beside today's.

This VM's speed varies about 2x from one day to the next, so a figure recorded another day
says nothing about today's; the issue's targets compare against this arm measured in the same
run instead. Its source comes from `git archive COMMIT src`, extracted once per commit into
bench/.work/, and runs from the same venv as today's gateway with PYTHONPATH pointing at it:
the editable install is a plain `.pth` entry in site-packages, which comes after PYTHONPATH
on sys.path. `prepare()` checks that where the arm's interpreter imports `llm_backends` from.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procs, targets
from bench.targets import Gateway, Mocks, Target

#: main when the work on issue #15 started (backend calls still on aiohttp).
COMMIT = "1e4aec3"
NAME = "before"
LABEL = f"llm-backends @{COMMIT} (before #15)"


@dataclass
class Arm:
    """A started before-arm gateway and the evidence of which code it runs."""

    gateway: Gateway
    commit: str
    src: Path
    #: `llm_backends.__file__` as the arm's interpreter resolves it (under `src`).
    module_file: str

    def info(self) -> dict[str, Any]:
        return {
            "name": NAME,
            "label": LABEL,
            "commit": self.commit,
            "src": str(self.src),
            "module_file": self.module_file,
        }


def _git(*args: str) -> bytes:
    out = subprocess.run(
        ["git", "-C", str(procs.ROOT), *args], capture_output=True, timeout=60, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {out.stderr.decode(errors='replace')[-300:]}")
    return out.stdout


def source(commit: str = COMMIT) -> Path:
    """The extracted `src` of `commit`, cached in bench/.work/before-<commit>/ (a COMMIT file
    written last marks a complete extraction; a partial one is replaced)."""
    full = _git("rev-parse", "--verify", f"{commit}^{{commit}}").decode().strip()
    dest = procs.BENCH / ".work" / f"before-{commit}"
    src = dest / "src"
    marker = dest / "COMMIT"
    if marker.exists() and marker.read_text().strip() == full and (src / "llm_backends").is_dir():
        return src
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"tmp-before-{commit}-", dir=dest.parent))
    try:
        archive = _git("archive", "--format=tar", full, "src")
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        (tmp / "COMMIT").write_text(full + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return src


def gateway(work: Path, mocks: Mocks, src: Path, log_level: str | None) -> Gateway:
    """Today's llm-backends gateway, word for word (command, settings, core), but with its own
    database and `llm_backends` imported from `src`."""
    home = work / NAME
    home.mkdir(parents=True, exist_ok=True)
    gw = targets.llm_backends_gateway(home, mocks.main.url, stub=False, log_level=log_level)
    gw.name = NAME
    gw.log_dir = work / "logs"
    gw.env["PYTHONPATH"] = str(src)
    gw.version = f"@{COMMIT}"
    return gw


def module_file(gw: Gateway) -> str:
    """Where `llm_backends` comes from for the gateway's own interpreter, environment and cwd."""
    cli = Path(gw.argv[0])
    python = cli.read_text().splitlines()[0].removeprefix("#!").strip()
    env = procs.child_env(gw.env)
    out = subprocess.run(
        [python, "-c", "import llm_backends; print(llm_backends.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(gw.cwd),
        timeout=60,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"import llm_backends failed: {out.stderr[-300:]}")
    return out.stdout.strip()


def prepare(work: Path, mocks: Mocks, log_level: str | None) -> tuple[Gateway, Path, str]:
    """Extract, build and check the arm (not started). RuntimeError when it would not run the
    old code."""
    if targets.llm_backends_cli() is None:
        raise RuntimeError(".venv/bin/llm-backends not found (make install)")
    src = source()
    gw = gateway(work, mocks, src, log_level)
    found = module_file(gw)
    if not Path(found).resolve().is_relative_to(src.resolve()):
        raise RuntimeError(f"llm_backends imported from {found}, not from {src}")
    return gw, src, found


def start(work: Path, mocks: Mocks, log_level: str | None, notes: dict[str, str]) -> Arm | None:
    """Start the arm as bench/run.py starts today's gateway: up, configs through its Admin API,
    a 200 on chat. A failure is a note (the checks then fall back to recorded figures)."""
    try:
        gw, src, found = prepare(work, mocks, log_level)
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        notes[NAME] = f"not run: {str(error)[-600:]}"
        return None
    try:
        gw.start_until_health(60)
        targets.create_configs(gw, targets.llm_backends_configs(mocks))
        if not targets.chat_ok(gw.port, gw.chat_model, gw.headers):
            raise RuntimeError(f"no 200 on POST {targets.CHAT_PATH}")
    except (RuntimeError, TimeoutError, OSError) as error:
        notes[NAME] = f"could not start: {str(error)[-600:]}"
        gw.stop()
        return None
    full = (src.parent / "COMMIT").read_text().strip()
    return Arm(gw, full, src, found)


def with_arm(tgts: list[Target], arm: Target | None) -> list[Target]:
    """`tgts` with the arm right after today's llm-backends (the columns read side by side)."""
    if arm is None:
        return list(tgts)
    at = next((i + 1 for i, t in enumerate(tgts) if t.name.startswith("llm-backends")), len(tgts))
    return [*tgts[:at], arm, *tgts[at:]]
