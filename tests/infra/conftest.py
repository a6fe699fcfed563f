"""Shared helpers of the packaging tests: the repository paths, the SAM template parsed with its
CloudFormation tags, and the tools installed into the test venv by tests/setup."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TEMPLATE = INFRA / "template.yaml"
COMPOSE = INFRA / "docker-compose.yml"
INIT_SCRIPT = INFRA / "localstack" / "ready.d" / "splat_init.py"
VENV_BIN = Path(sys.executable).parent


class CfnLoader(yaml.SafeLoader):
    """Reads `!Ref X`, `!GetAtt A.B`, `!Sub ...` etc. as the long forms `{"Ref": "X"}`,
    `{"Fn::GetAtt": ["A", "B"]}`, `{"Fn::Sub": ...}` that CloudFormation itself sees."""


def _cfn_tag(loader, tag_suffix, node):
    # `!Ref` and `!Condition` are the two whose long forms carry no `Fn::` prefix.
    name = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_cfn(path=TEMPLATE):
    return yaml.load(path.read_text(), Loader=CfnLoader)


@pytest.fixture(scope="session")
def template():
    return load_cfn()


@pytest.fixture(scope="session")
def efs_template(template):
    """The template with the database mode's choices (`Fn::If` on RemoteDatabase) taken for the default, the
    database on EFS; every other `Fn::If` left as it is."""
    def walk(node):
        if isinstance(node, dict):
            if list(node) == ["Fn::If"] and node["Fn::If"][0] == "RemoteDatabase":
                return walk(node["Fn::If"][2])
            return {k: v for k, v in ((k, walk(v)) for k, v in node.items()) if v != {"Ref": "AWS::NoValue"}}
        if isinstance(node, list):
            return [v for v in map(walk, node) if v != {"Ref": "AWS::NoValue"}]
        return node

    return walk(template)


def tool(name):
    """A command from the test venv (tests/setup installs it), else from PATH."""
    path = VENV_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    assert found, f"{name} is not installed: run tests/setup (it comes from tests/requirements.txt)"
    return found


def offline_env():
    """SAM and cfn-lint with no telemetry, no update check, no credentials and a fixed region."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(SAM_CLI_TELEMETRY="0", SAM_CLI_DISABLE_UPDATE_CHECK="1", AWS_DEFAULT_REGION="us-east-1")
    return env


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def aws_endpoint(tmp_path_factory):
    """The moto server tests/run started (SPLAT_TEST_AWS_ENDPOINT), or one of our own when run alone."""
    endpoint = os.environ.get("SPLAT_TEST_AWS_ENDPOINT")
    if endpoint:
        yield endpoint
        return
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    proc = subprocess.Popen([tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def splat_bin():
    """The `splat` binary (tests/run builds it; SPLAT_BIN names it, as for tests/sdk)."""
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache" / "splat-target"))
    path = Path(os.environ.get("SPLAT_BIN") or Path(target) / "debug" / "splat")
    assert path.exists(), f"{path} is missing: cargo build -p splat-cli (or set SPLAT_BIN)"
    return str(path)
