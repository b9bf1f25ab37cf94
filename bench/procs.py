"""Process plumbing for the benchmarks: start pinned children, wait on readiness, read memory.

Every wait here is a readiness poll bounded in time, never a bare sleep.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable

#: The gateway under test gets core 0 alone; the mock and the load generator share core 1.
GATEWAY_CPU = "0"
CLIENT_CPU = "1"


def cpu_count() -> int:
    return os.cpu_count() or 1


def pin_prefix(cpus: str | None) -> list[str]:
    """`taskset -c CPUS` when pinning makes sense here (taskset present, 2+ cores)."""
    if cpus is None or cpu_count() < 2 or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", cpus]


def pin_self(cpus: str) -> None:
    """Pin the calling process (the orchestrator) beside the load generator."""
    if cpu_count() >= 2:
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Child:
    """A started subprocess; `stop()` ends it (and only it) by pid."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    started: float
    log_path: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, chars: int = 2000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def child_env(env: Mapping[str, str | None] | None) -> dict[str, str]:
    """This process's environment plus `env`, where a None value removes the variable."""
    full_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    return full_env


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    port: int,
    cpus: str | None,
    env: Mapping[str, str | None] | None = None,
    log_dir: Path | None = None,
    cwd: Path | None = None,
) -> Child:
    """Start `argv` pinned to `cpus`, stdout+stderr to a log file (or discarded).

    `env` adds to this process's environment; a None value removes the variable.
    """
    log_path = None
    out: int | object = subprocess.DEVNULL
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{name}.log"
        out = log_path.open("wb")
    full_env = child_env(env)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*pin_prefix(cpus), *argv],
        stdout=out,  # type: ignore[arg-type]
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=full_env,
        cwd=str(cwd or ROOT),
    )
    return Child(name, proc, port, started, log_path)


def start_mock(
    name: str,
    *,
    cpus: str | None = CLIENT_CPU,
    latency_ms: float = 0.0,
    chunks: int = 8,
    text: str | None = None,
    hang: bool = False,
    log_dir: Path | None = None,
    timeout: float = 15.0,
) -> Child:
    """Start bench.mock_backend on a free port and wait until it answers."""
    port = free_port()
    argv = [
        PYTHON,
        "-m",
        "bench.mock_backend",
        "--port",
        str(port),
        "--latency-ms",
        str(latency_ms),
        "--chunks",
        str(chunks),
    ]
    if text is not None:
        argv += ["--text", text]
    if hang:
        argv.append("--hang")
    child = spawn(name, argv, port=port, cpus=cpus, log_dir=log_dir)
    if hang:
        wait_port(child, timeout)
    else:
        wait_http(child, "/health", timeout)
    return child


def start_forwarder(
    name: str, module: str, target_port: int, log_dir: Path | None, timeout: float
) -> Child:
    """`python -m MODULE --port P --target-port T` pinned to the gateway's core, once it
    accepts connections: a floor arm in front of the mock at `target_port`."""
    port = free_port()
    argv = [PYTHON, "-m", module, "--port", str(port), "--target-port", str(target_port)]
    child = spawn(name, argv, port=port, cpus=GATEWAY_CPU, log_dir=log_dir)
    try:
        wait_port(child, timeout)
    except (RuntimeError, TimeoutError):
        child.stop()
        raise
    return child


def wait_port(child: Child, timeout: float) -> None:
    """Until something accepts TCP connections on the child's port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited early: {child.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", child.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.01)
    raise TimeoutError(f"{child.name} not listening on {child.port} after {timeout}s")


def wait_http(
    child: Child, path: str, timeout: float, ok: Callable[[int], bool] = lambda s: s < 500
) -> float:
    """Poll GET path until `ok(status)`; return seconds since the child was spawned."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited early: {child.log_tail()}")
        try:
            with urllib.request.urlopen(child.url + path, timeout=1.0) as resp:
                if ok(resp.status):
                    return time.perf_counter() - child.started
        except urllib.error.HTTPError as err:
            if ok(err.code):
                return time.perf_counter() - child.started
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.01)
    raise TimeoutError(f"{child.name} did not answer {path} within {timeout}s: {child.log_tail()}")


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (through /proc/<pid>/task/*/children)."""
    out: list[int] = []
    todo = [pid]
    while todo and len(out) < 256:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except OSError:
                continue
    return out


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process tree, in clock ticks (0 for a process that is gone)."""
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total


def wait_idle(
    pids: Sequence[int], *, window: float = 0.2, max_share: float = 0.05, timeout: float = 10.0
) -> float:
    """Until the processes together use < max_share of a core over `window` (bounded).

    A gateway may keep working for a while after its first answer (LiteLLM does); measuring
    the other one meanwhile, on the same core, would charge it for that. Returns seconds waited.
    """
    hz = os.sysconf("SC_CLK_TCK")
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        before = sum(cpu_ticks(p) for p in pids)
        time.sleep(window)
        used = (sum(cpu_ticks(p) for p in pids) - before) / hz
        if used <= max_share * window:
            break
    return time.monotonic() - t0


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return 0
    return 0


def rss_mb(pid: int) -> float:
    """Current resident set of the process tree rooted at pid, MB."""
    return sum(_status_kb(p, "VmRSS") for p in process_tree(pid)) / 1024


def peak_rss_mb(pid: int) -> float:
    """Peak resident set (VmHWM) of the process tree rooted at pid, MB.

    Skips the `taskset` wrapper: it execs, so the pid is the program itself.
    """
    return sum(_status_kb(p, "VmHWM") for p in process_tree(pid)) / 1024


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM (`echo 5 > /proc/pid/clear_refs`, Linux 4.0+) so a phase's own peak shows."""
    ok = True
    for p in process_tree(pid):
        try:
            Path(f"/proc/{p}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


def load_argv(
    url: str,
    body: str,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    engine: str = "auto",
    stream: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """The command of one closed-loop `bench.load` run (`body`: the JSON text of each
    request; `extra`: more of its options, e.g. `-n`, `--header`)."""
    argv = [PYTHON, "-m", "bench.load", "--engine", engine, "--url", url]
    argv += ["-c", str(concurrency), "-d", str(duration), "--warmup", str(warmup)]
    argv += ["--body", body, *extra]
    return [*argv, "--stream"] if stream else argv


def run_json(
    argv: Sequence[str],
    *,
    cpus: str | None,
    timeout: float,
    env: dict[str, str] | None = None,
    result_path: Path | None = None,
) -> dict[str, object]:
    """Run a child that prints one JSON object last on stdout (or writes it to
    `result_path`, for a child whose own stdout carries log lines); return it."""
    import json

    full_env = child_env(env)
    out = subprocess.run(
        [*pin_prefix(cpus), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=str(ROOT),
        check=False,
    )
    if result_path is not None:
        if result_path.exists() and result_path.stat().st_size:
            return json.loads(result_path.read_text())  # type: ignore[no-any-return]
    else:
        for line in reversed(out.stdout.splitlines()):
            if line.startswith("{"):
                return json.loads(line)  # type: ignore[no-any-return]
    raise RuntimeError(
        f"{argv[:4]} gave no JSON (rc={out.returncode}): {out.stdout[-800:]} {out.stderr[-1500:]}"
    )
