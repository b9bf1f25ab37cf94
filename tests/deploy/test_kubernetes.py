"""deploy/kubernetes and the Dockerfile, checked offline: the kustomize base renders, every
object passes the Kubernetes schema, and what the manifests say about the program (probe
paths, ports, environment variable names, commands) matches the code."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from llm_backends.app import create_app
from llm_backends.cli import app as cli_app
from llm_backends.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "kubernetes"
#: The oldest Kubernetes the manifests are meant for, and the newest schemas shipped.
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())

Doc = dict[str, Any]


def kustomize(directory: Path) -> list[Doc]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed here (CI has it): cannot render the kustomize base")
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the base with secrets.env made from the example, as the README says, and an
    overlay that adds the optional HPA component."""
    root = tmp_path_factory.mktemp("k8s")
    base = root / "base"
    shutil.copytree(BASE, base, ignore=shutil.ignore_patterns("secrets.env"))
    shutil.copy(base / "secrets.env.example", base / "secrets.env")
    overlay = root / "with-hpa"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [../base]\ncomponents: [../base/components/hpa]\n"
    )
    return root


@pytest.fixture(scope="module")
def rendered(workdir: Path) -> list[Doc]:
    return kustomize(workdir / "base")


def one(docs: list[Doc], kind: str) -> Doc:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def cli_accepts(argv: list[str]) -> bool:
    """Whether the real typer CLI parses `argv` (after the program name): with `--help`
    appended, it stops before running anything, but only once every option is known."""
    result = CliRunner().invoke(cli_app, [*argv, "--help"])
    return result.exit_code == 0


def console_script() -> str:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"llm-backends": "llm_backends.cli:app"}
    return "llm-backends"


def test_the_base_renders_every_object(rendered: list[Doc]) -> None:
    kinds = sorted(doc["kind"] for doc in rendered)
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Job",
        "PodDisruptionBudget",
        "Secret",
        "Service",
    ]
    assert {doc["metadata"]["namespace"] for doc in rendered} == {"automation"}


def test_the_hpa_component_adds_an_autoscaler(workdir: Path, rendered: list[Doc]) -> None:
    docs = kustomize(workdir / "with-hpa")
    hpa = one(docs, "HorizontalPodAutoscaler")
    deployment = one(rendered, "Deployment")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_passes_the_kubernetes_schema(
    workdir: Path, rendered: list[Doc], version: str
) -> None:
    for doc in [*rendered, one(kustomize(workdir / "with-hpa"), "HorizontalPodAutoscaler")]:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_schema_validator_rejects_a_broken_object(rendered: list[Doc]) -> None:
    broken = json.loads(json.dumps(one(rendered, "Deployment")))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def container(doc: Doc) -> Doc:
    (only,) = doc["spec"]["template"]["spec"]["containers"]
    return only


def test_commands_are_the_clis(rendered: list[Doc]) -> None:
    server = container(one(rendered, "Deployment"))
    migrate = container(one(rendered, "Job"))
    assert server["command"] == [console_script()]
    assert server["args"] == ["serve", "--no-migrate"]
    assert migrate["command"] == [console_script()]
    assert migrate["args"] == ["migrate"]
    assert cli_accepts(server["args"])
    assert cli_accepts(migrate["args"])
    assert not cli_accepts(["serve", "--no-such-option"])  # the check itself can fail
    assert not cli_accepts(["no-such-command"])


def test_probes_and_ports_match_the_app(rendered: list[Doc]) -> None:
    deployment = one(rendered, "Deployment")
    server = container(deployment)
    config = one(rendered, "ConfigMap")["data"]
    routes = set(create_app(Settings()).openapi()["paths"])
    (port,) = server["ports"]
    assert port == {"name": "http", "containerPort": int(config["PORT"]), "protocol": "TCP"}
    assert config["HOST"] == "0.0.0.0"
    probes = {kind: server[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/health"
    assert probes["readinessProbe"]["path"] == "/ready"
    assert server["startupProbe"]["httpGet"]["path"] == "/health"
    for probe in (*probes.values(), server["startupProbe"]["httpGet"]):
        assert probe["path"] in routes
        assert probe["port"] == "http"
    service = one(rendered, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (
        service["spec"]["selector"],
        one(rendered, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= pod_labels.items()


def test_env_names_are_settings(rendered: list[Doc]) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    config = one(rendered, "ConfigMap")
    assert set(config["data"]) <= fields, set(config["data"]) - fields
    secret = one(rendered, "Secret")
    for kind in ("Deployment", "Job"):
        spec = container(one(rendered, kind))
        assert spec["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
        for variable in spec["env"]:
            assert variable["name"] in fields
            ref = variable["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"]
            assert ref["key"] in secret["data"]
    names = {v["name"] for v in container(one(rendered, "Deployment"))["env"]}
    assert names == {"DATABASE_URL", "ADMIN_API_TOKEN"}
    # The guide: kubectl -n automation get secret admin-api-credentials ... '{.data.api-token}'
    assert secret["metadata"]["name"] == "admin-api-credentials" and "api-token" in secret["data"]


def test_rollout_and_shutdown_fit_together(rendered: list[Doc]) -> None:
    deployment = one(rendered, "Deployment")
    config = one(rendered, "ConfigMap")["data"]
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    server = container(deployment)
    pre_stop = server["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    # The grace period is counted from SIGTERM, which comes after preStop.
    needed = int(pre_stop[1]) + float(config["SHUTDOWN_GRACE_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] > needed
    assert float(config["SHUTDOWN_DELAY_SECONDS"]) > 0
    assert float(config["SHUTDOWN_GRACE_SECONDS"]) > float(config["SHUTDOWN_DELAY_SECONDS"])
    assert server["resources"]["requests"] and server["resources"]["limits"]["memory"]


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pods_run_as_non_root_on_a_read_only_filesystem(rendered: list[Doc], kind: str) -> None:
    pod = one(rendered, kind)["spec"]["template"]["spec"]
    spec = container(one(rendered, kind))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"]: m["name"] for m in spec["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def dockerfile_instruction(name: str) -> str:
    text = (ROOT / "Dockerfile").read_text()
    found = re.findall(rf"^{name}\s+(.+)$", text, flags=re.MULTILINE)
    assert found, f"Dockerfile has no {name}"
    return found[-1].strip()  # the final stage's


def test_the_dockerfile_runs_the_same_commands_as_non_root() -> None:
    entrypoint = json.loads(dockerfile_instruction("ENTRYPOINT"))
    command = json.loads(dockerfile_instruction("CMD"))
    assert entrypoint == [console_script()]
    assert command == ["serve", "--no-migrate"]
    assert cli_accepts(command)
    assert cli_accepts(["migrate"])
    user = dockerfile_instruction("USER").split(":")[0]
    assert user not in ("root", "0")
    assert dockerfile_instruction("EXPOSE") == "8080"
    assert dockerfile_instruction("FROM").startswith("python:3.11-slim")
