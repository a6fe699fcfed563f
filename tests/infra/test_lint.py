"""The SAM CLI's and cfn-lint's verdicts on infra/template.yaml, offline (no credentials, no telemetry), and
samconfig.toml's defaults."""

import subprocess
import tomllib

from conftest import ROOT, TEMPLATE, offline_env, tool


def run(*args):
    return subprocess.run(args, cwd=ROOT, env=offline_env(), capture_output=True, text=True, timeout=300)


def test_sam_validate_lint():
    out = run(tool("sam"), "validate", "--lint", "-t", str(TEMPLATE.relative_to(ROOT)))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "is a valid SAM Template" in out.stdout + out.stderr


def test_sam_validate_through_samconfig():
    """`sam validate` with no flags, as the README says: samconfig.toml supplies the template and lint."""
    out = run(tool("sam"), "validate")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "infra/template.yaml is a valid SAM Template" in out.stdout + out.stderr


def test_cfn_lint():
    out = run(tool("cfn-lint"), str(TEMPLATE.relative_to(ROOT)))
    assert out.returncode == 0, out.stdout + out.stderr


def test_cfn_lint_catches_a_broken_template(tmp_path):
    """The linter is live, not a no-op: a function timeout past Lambda's maximum fails."""
    broken = tmp_path / "template.yaml"
    broken.write_text(TEMPLATE.read_text().replace("Timeout: 15", "Timeout: 99999", 1))
    out = run(tool("cfn-lint"), str(broken))
    assert out.returncode != 0 and "E3034" in out.stdout, out.stdout + out.stderr


def test_samconfig_defaults():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())["default"]
    assert config["validate"]["parameters"] == {"template_file": "infra/template.yaml", "lint": True}
    build = config["build"]["parameters"]
    assert build["template_file"] == "infra/template.yaml" and build["cached"] is True
    deploy = config["deploy"]["parameters"]
    # deploy must take the built template (.aws-sam/build), never the source one.
    assert "template_file" not in deploy and "template_file" not in config["global"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM" and deploy["confirm_changeset"] is True
    assert deploy["resolve_s3"] is True
