"""What the benchmark sends traffic to: the mock directly, llm-backends, LiteLLM proxy.

Each gateway is started pinned to core 0 as its own process; `start()` returns the cold-start
time (spawn to the first 200 on a chat request), measured by polling, never by sleeping.
"""

from __future__ import annotations

import http.client
import json
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procs

CHAT_PATH = "/v1/chat/completions"
OLLAMA_CHAT_PATH = "/api/chat"
LITELLM_VENV = procs.BENCH / ".venv-litellm"
LITELLM_DIR = procs.BENCH / "litellm"
PORTKEY_DIR = procs.BENCH / "portkey"
PORTKEY_PACKAGE = PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway"
PORTKEY_SERVER = PORTKEY_PACKAGE / "build" / "start-server.js"


def chat_body(model: str, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 16,
    }
    if stream:
        body["stream"] = True
    return body


def ollama_chat_body(model: str) -> dict[str, Any]:
    """Ollama's `POST /api/chat`, one JSON object back (Ollama streams unless told not to)."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": False,
        "options": {"num_predict": 16},
    }


@dataclass
class Reply:
    status: int
    body: bytes
    seconds: float

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Http:
    """A keep-alive HTTP/1.1 client for one host (sequential probes; reconnects on error)."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.port = port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=timeout or self.timeout
                )
            t0 = time.perf_counter()
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                resp = self.conn.getresponse()
                payload = resp.read()
                return Reply(resp.status, payload, time.perf_counter() - t0)
            except (ConnectionError, http.client.HTTPException, OSError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def chat_ok(port: int, model: str, headers: dict[str, str]) -> bool:
    """One chat request on a fresh connection; True on a 200."""
    try:
        client = Http(port, timeout=5.0)
        try:
            return client.request("POST", CHAT_PATH, chat_body(model), headers).status == 200
        finally:
            client.close()
    except OSError:
        return False


@dataclass
class Target:
    """Where one column of the tables sends its requests."""

    name: str
    port: int
    headers: dict[str, str]
    chat_model: str
    paced_model: str
    gateway: Gateway | None = None
    #: Model for Ollama's `POST /api/chat`; None when the target serves no Ollama API.
    ollama_model: str | None = None
    #: Headers of paced-mock requests, when the gateway picks its upstream by header (Portkey).
    paced_headers: dict[str, str] | None = None

    @property
    def chat_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{CHAT_PATH}"

    @property
    def ollama_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{OLLAMA_CHAT_PATH}"

    def header_args(self, paced: bool = False) -> list[str]:
        headers = self.paced_headers if paced and self.paced_headers else self.headers
        out: list[str] = []
        for k, v in headers.items():
            out += ["--header", f"{k}: {v}"]
        return out


@dataclass
class Gateway:
    """A gateway process under test (llm-backends, its stub, or LiteLLM)."""

    name: str
    argv: list[str]
    env: dict[str, str | None]
    cwd: Path
    log_dir: Path
    headers: dict[str, str] = field(default_factory=dict)
    chat_model: str = "bench-openai"
    #: None when the gateway serves no Ollama API (LiteLLM proxy, Portkey, the stub).
    ollama_model: str | None = None
    #: See Target.paced_headers.
    paced_headers: dict[str, str] | None = None
    port: int = 0
    child: procs.Child | None = None
    starts: int = 0
    version: str = ""

    def spawn(self) -> procs.Child:
        self.port = self.port or procs.free_port()
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        self.starts += 1
        self.child = procs.spawn(
            f"{self.name}-{self.starts}".replace(" ", "_"),
            argv,
            port=self.port,
            cpus=procs.GATEWAY_CPU,
            env=self.env,
            log_dir=self.log_dir,
            cwd=self.cwd,
        )
        return self.child

    def start_until_chat(self, timeout: float) -> float:
        """Spawn and poll chat requests until a 200: the cold start, in seconds."""
        child = self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not child.alive():
                raise RuntimeError(f"{self.name} exited: {child.log_tail()}")
            if chat_ok(self.port, self.chat_model, self.headers):
                return time.perf_counter() - child.started
            time.sleep(0.01)
        raise TimeoutError(f"{self.name}: no 200 on chat within {timeout}s: {child.log_tail()}")

    def start_until_health(self, timeout: float) -> float:
        child = self.spawn()
        return procs.wait_http(child, "/health", timeout, ok=lambda s: s == 200)

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.pid

    def target(self, paced_model: str) -> Target:
        return Target(
            self.name,
            self.port,
            self.headers,
            self.chat_model,
            paced_model,
            self,
            self.ollama_model,
            self.paced_headers,
        )


@dataclass
class Mocks:
    """The mock backends of one run, all on the client core."""

    main: procs.Child
    paced: procs.Child
    other: procs.Child
    hang: procs.Child
    #: The same instant mock, but on the gateway's core: measures the cross-core round trip.
    xcore: procs.Child
    closed_port: int

    def all(self) -> list[procs.Child]:
        return [self.main, self.paced, self.other, self.hang, self.xcore]

    def stop(self) -> None:
        for child in self.all():
            child.stop()


OTHER_TEXT = "Answer from mock B."


def start_mocks(log_dir: Path, paced_chunk_delay_ms: float) -> Mocks:
    main = procs.start_mock("mock-main", log_dir=log_dir)
    paced = procs.spawn(
        "mock-paced",
        [
            procs.PYTHON,
            "-m",
            "bench.mock_backend",
            "--port",
            str(port := procs.free_port()),
            "--chunks",
            "8",
            "--chunk-delay-ms",
            str(paced_chunk_delay_ms),
        ],
        port=port,
        cpus=procs.CLIENT_CPU,
        log_dir=log_dir,
    )
    procs.wait_http(paced, "/health", 15)
    other = procs.start_mock("mock-b", text=OTHER_TEXT, log_dir=log_dir)
    hang = procs.start_mock("mock-hang", hang=True, log_dir=log_dir)
    xcore = procs.start_mock("mock-xcore", cpus=procs.GATEWAY_CPU, log_dir=log_dir)
    return Mocks(main, paced, other, hang, xcore, procs.free_port())


def direct_target(mocks: Mocks) -> Target:
    return Target("direct", mocks.main.port, {}, "mock", "mock", ollama_model="mock")


def xcore_target(mocks: Mocks) -> Target:
    return Target("direct, mock on core 0", mocks.xcore.port, {}, "mock", "mock")


def direct_paced_target(mocks: Mocks) -> Target:
    return Target("direct", mocks.paced.port, {}, "mock", "mock")


# -- llm-backends ---------------------------------------------------------------------------


def llm_backends_cli() -> Path | None:
    cli = procs.ROOT / ".venv" / "bin" / "llm-backends"
    return cli if cli.exists() else None


def llm_backends_gateway(
    work: Path, ollama_url: str, *, stub: bool, log_level: str | None
) -> Gateway:
    token = "bench-" + secrets.token_hex(16)
    env: dict[str, str | None] = {
        "DATABASE_URL": f"sqlite:///{work / 'bench.db'}",
        "ADMIN_API_TOKEN": token,
        "OLLAMA_URL": ollama_url,
        "TOKEN_FILE": str(work / "token"),
        # No load balancer to tell here: stopping a gateway needs no lame duck.
        "SHUTDOWN_DELAY_SECONDS": "0",
    }
    if log_level:
        env["LOG_LEVEL"] = log_level
    if stub:
        # PYTHONPATH lets the stub import `bench` while running from the work dir.
        env["PYTHONPATH"] = str(procs.ROOT)
        argv = [procs.PYTHON, "-m", "bench.stub_gateway", "--host", "127.0.0.1", "--port", "{port}"]
        name = "llm-backends (stub)"
    else:
        cli = llm_backends_cli()
        argv = [str(cli), "serve", "--host", "127.0.0.1", "--port", "{port}"]
        name = "llm-backends"
    gw = Gateway(name, argv, env, work, work / "logs")
    if not stub:
        gw.ollama_model = "bench-ollama"  # the stub serves only the OpenAI API
    gw.version = _pkg_version(procs.PYTHON, "llm-backends")
    return gw


def admin_token(gw: Gateway) -> str:
    return str(gw.env["ADMIN_API_TOKEN"])


def cfg(name: str, kind: str, url: str, timeout: int = 30) -> dict[str, Any]:
    """One Admin API config body."""
    return {
        "model_name": name,
        "backend_type": kind,
        "endpoint_url": url,
        "enabled": True,
        "timeout_seconds": timeout,
        "max_tokens": 16,
    }


def llm_backends_configs(mocks: Mocks) -> list[dict[str, Any]]:
    """The configs the scenarios use, created through the Admin API."""
    dead = f"http://127.0.0.1:{mocks.closed_port}"
    return [
        cfg("bench-openai", "openai", mocks.main.url),
        cfg("bench-paced", "openai", mocks.paced.url),
        cfg("bench-ollama", "ollama", mocks.main.url),
        cfg("bench-switch", "openai", mocks.main.url),
        cfg("bench-lib", "openai", mocks.main.url),
        cfg("bench-lib-ollama", "ollama", mocks.main.url),
        cfg("bench-auto-closed", "auto", dead, timeout=2),
        cfg("bench-auto-hang", "auto", mocks.hang.url, timeout=2),
    ]


def create_configs(gw: Gateway, configs: list[dict[str, Any]]) -> dict[str, int]:
    """POST each config; model name -> id. Raises with the server's answer on failure."""
    client = Http(gw.port)
    auth = {"Authorization": f"Bearer {admin_token(gw)}"}
    ids: dict[str, int] = {}
    try:
        for body in configs:
            reply = client.request("POST", "/api/llm-backends", body, auth)
            if reply.status != 201:
                raise RuntimeError(
                    f"POST /api/llm-backends {body['model_name']}: "
                    f"HTTP {reply.status} {reply.body[:300]!r}"
                )
            ids[body["model_name"]] = int(reply.json()["id"])
    finally:
        client.close()
    return ids


# -- LiteLLM --------------------------------------------------------------------------------


def litellm_available() -> str | None:
    """None when usable, else why not."""
    if not (LITELLM_VENV / "bin" / "litellm").exists():
        return "bench/.venv-litellm missing (run bench/setup.sh)"
    return None


def litellm_gateway(work: Path, mocks: Mocks) -> Gateway:
    key = "sk-bench-" + secrets.token_hex(12)
    env: dict[str, str | None] = {
        "LITELLM_MASTER_KEY": key,
        "MOCK_API_BASE": mocks.main.url + "/v1",
        "MOCK_PACED_API_BASE": mocks.paced.url + "/v1",
        "MOCK_OLLAMA_BASE": mocks.main.url,
        # No network here: without this LiteLLM retries fetching its cost map at every start.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "DISABLE_SCHEMA_UPDATE": "True",
    }
    for var in ("DATABASE_URL", "REDIS_HOST", "REDIS_URL"):
        env[var] = None  # no database, no cache, whatever the caller's environment says
    argv = [
        str(LITELLM_VENV / "bin" / "litellm"),
        "--config",
        str(LITELLM_DIR / "config.yaml"),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--num_workers",
        "1",
    ]
    gw = Gateway(
        "litellm", argv, env, work, work / "logs", headers={"Authorization": f"Bearer {key}"}
    )
    gw.version = _pkg_version(str(LITELLM_VENV / "bin" / "python"), "litellm")
    return gw


# -- Portkey --------------------------------------------------------------------------------


def portkey_available() -> str | None:
    """None when usable, else why not."""
    if not PORTKEY_SERVER.exists():
        return "bench/portkey/node_modules missing (run bench/setup.sh; needs npm)"
    if shutil.which("node") is None:
        return "node not found"
    return None


def portkey_headers(upstream: str) -> dict[str, str]:
    """Portkey routes by header: the provider, and the OpenAI-compatible server to call. It
    checks no key of its own; the Authorization header is passed on to the upstream."""
    return {
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": upstream + "/v1",
        "Authorization": "Bearer sk-bench-unused",
    }


def portkey_gateway(work: Path, mocks: Mocks) -> Gateway:
    # NODE_ENV=production and --headless: no banner, no web console, no file watching.
    argv = ["node", str(PORTKEY_SERVER), "--port={port}", "--headless"]
    env: dict[str, str | None] = {"NODE_ENV": "production"}
    gw = Gateway(
        "portkey",
        argv,
        env,
        work,
        work / "logs",
        headers=portkey_headers(mocks.main.url),
        chat_model="mock",
    )
    gw.paced_headers = portkey_headers(mocks.paced.url)
    gw.version = _npm_version(PORTKEY_PACKAGE)
    return gw


def _npm_version(package_dir: Path) -> str:
    try:
        return str(json.loads((package_dir / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return ""


def _pkg_version(python: str, package: str) -> str:
    import subprocess

    if not Path(python).exists():
        return ""
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    try:
        out = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip()


def wrk_version() -> str:
    import subprocess

    wrk = shutil.which("wrk")
    if wrk is None:
        return ""
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10, check=False)
    text = (out.stdout or out.stderr).strip()
    # "wrk debian/4.1.0-3+b2 [epoll] Copyright ..." -> "debian/4.1.0-3+b2"
    return text.split()[1] if len(text.split()) > 1 else text
