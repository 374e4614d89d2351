"""The deployment files (Dockerfile, docker-compose.yml, deploy/k8s) hold what operations rely on,
and pass offline validation (`make validate-deploy`), which does fail on a broken file."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
NGINX = REPO / "deploy" / "nginx"


def validate_deploy(*overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "validate-deploy", *overrides],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def manifests(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def test_compose_and_kubernetes_files_pass_offline_validation() -> None:
    finished = validate_deploy()
    assert finished.returncode == 0, finished.stdout + finished.stderr


def test_validation_fails_on_an_unknown_field(tmp_path: Path) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    compose["services"]["app1"]["replica"] = 2  # a typo of a real field
    broken_compose = tmp_path / "compose.yml"
    broken_compose.write_text(yaml.safe_dump(compose))
    [deployment] = manifests(K8S / "deployment.yaml")
    deployment["spec"]["replica"] = 3
    broken_deployment = tmp_path / "deployment.yaml"
    broken_deployment.write_text(yaml.safe_dump(deployment))

    compose_check = validate_deploy(f"COMPOSE_FILE={broken_compose}")
    k8s_check = validate_deploy(f"K8S_MANIFESTS={broken_deployment}")

    assert compose_check.returncode != 0 and "replica" in compose_check.stdout
    assert k8s_check.returncode != 0 and "replica" in k8s_check.stdout + k8s_check.stderr


def test_dockerfile_builds_with_uv_in_stages_and_runs_unprivileged() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.MULTILINE)) >= 2
    assert "uv sync --frozen --no-dev" in dockerfile
    [user] = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user.split(":")[0] not in {"0", "root"}
    assert re.search(r"^HEALTHCHECK .*", dockerfile, re.MULTILINE)
    assert re.search(r'^CMD \["ticketflow", "serve"', dockerfile, re.MULTILINE)


def test_compose_runs_three_instances_behind_nginx_with_secrets_from_the_environment() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    apps = [name for name, service in services.items() if "serve" in service.get("command", [])]
    assert len(apps) == 3
    assert {"postgres", "redis", "migrate", "payment-provider", "nginx"} <= set(services)
    upstream = (REPO / "deploy" / "nginx" / "nginx.conf").read_text()
    assert all(f"server {app}:8000" in upstream for app in apps)
    for app in apps:
        environment = services[app]["environment"]
        assert environment["TICKETFLOW_ENVIRONMENT"] == "production"
        for secret in ("TICKETFLOW_JWT_SECRET", "TICKETFLOW_PAYMENT_WEBHOOK_SECRET"):
            assert re.fullmatch(r"\$\{" + secret + r":\?.+\}", environment[secret])


def test_kubernetes_deployment_probes_and_drains_its_pods() -> None:
    [deployment] = manifests(K8S / "deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert deployment["spec"]["replicas"] == 3
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    [config] = manifests(K8S / "configmap.yaml")
    app_grace = int(config["data"]["TICKETFLOW_SHUTDOWN_GRACE_SECONDS"])
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pre_stop + app_grace < pod["terminationGracePeriodSeconds"]
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_kustomization_applies_every_manifest_but_the_secret_example() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    present = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present - {"secret.example.yaml"}


def test_compose_nginx_config_passes_nginx_own_check(tmp_path: Path) -> None:
    """The compose nginx.conf with the shared locations (the micro-cache zone they use is the
    http block's), checked by `nginx -t`: only the names and paths of the containers differ."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed (make nginx)")
    config = (REPO / "deploy" / "nginx" / "nginx.conf").read_text()
    for container, here in (
        (re.compile(r"app\d:8000"), "127.0.0.1:8000"),
        (
            re.compile(r"/etc/nginx/ticketflow-locations\.conf"),
            str(NGINX / "ticketflow-locations.conf"),
        ),
        (re.compile(r"/var/cache/nginx/ticketflow"), str(tmp_path / "cache")),
        (re.compile(r"/tmp/nginx\.pid"), str(tmp_path / "nginx.pid")),
    ):
        assert container.search(config), container.pattern
        config = container.sub(here, config)
    (tmp_path / "nginx.conf").write_text(config)
    checked = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", "nginx.conf"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    locations = (NGINX / "ticketflow-locations.conf").read_text()
    assert "proxy_cache ticketflow_catalog;" in locations
    assert "proxy_no_cache $http_authorization $http_cookie;" in locations
