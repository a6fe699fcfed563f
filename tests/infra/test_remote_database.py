"""The template's two database modes, resolved as CloudFormation would for given parameters: the EFS file
(the default) and a libSQL server (DatabaseUrl), which needs no VPC, no EFS and no security group. Both
resolve without a dangling reference and pass cfn-lint and `sam validate --lint`."""

import re
import subprocess

import pytest

from conftest import ROOT, TEMPLATE, load_cfn, offline_env, tool

REMOTE = {"DatabaseUrl": "libsql://splat-me.turso.io", "DatabaseTokenSecretId": "splat/database-token"}
# Every function deployed: the UI (behind sign-in) and MCP are optional.
EVERY_FUNCTION = {"EnableUi": "true", "OidcDiscoveryUrl": "https://id.example.com", "McpTokenSecretId": "splat/mcp"}
NO_VALUE = object()


def resolve(template, params):
    """The resources and outputs that exist with `params` (others at their defaults), every `Fn::If` taken
    and every `AWS::NoValue` removed."""
    values = {name: p.get("Default", "") for name, p in template["Parameters"].items()} | params
    known = {}

    def condition(name):
        if name not in known:
            known[name] = evaluate(template["Conditions"][name])
        return known[name]

    def evaluate(node):
        [(fn, arg)] = node.items()
        if fn == "Condition":
            return condition(arg)
        if fn == "Fn::Equals":
            a, b = (values[x["Ref"]] if isinstance(x, dict) else x for x in arg)
            return str(a) == str(b)
        parts = [evaluate(x) for x in arg]
        return {"Fn::Not": lambda: not parts[0], "Fn::And": lambda: all(parts), "Fn::Or": lambda: any(parts)}[fn]()

    def walk(node):
        if isinstance(node, dict):
            if list(node) == ["Fn::If"]:
                name, yes, no = node["Fn::If"]
                return walk(yes if condition(name) else no)
            if node == {"Ref": "AWS::NoValue"}:
                return NO_VALUE
            return {k: v for k, v in ((k, walk(v)) for k, v in node.items()) if v is not NO_VALUE}
        if isinstance(node, list):
            return [v for v in map(walk, node) if v is not NO_VALUE]
        return node

    def present(section):
        return {n: walk(r) for n, r in template.get(section, {}).items()
                if "Condition" not in r or condition(r["Condition"])}

    return present("Resources"), present("Outputs")


def names_used(node):
    """Every resource or parameter a node refers to: Ref, GetAtt, `${Name}` / `${Name.Attr}` in Sub."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                yield value
            elif key == "Fn::GetAtt":
                yield value[0]
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                yield from (m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
                yield from names_used(value if isinstance(value, list) else [])
            else:
                yield from names_used(value)
    elif isinstance(node, list):
        for item in node:
            yield from names_used(item)


@pytest.mark.parametrize("params", [{}, REMOTE, EVERY_FUNCTION, REMOTE | EVERY_FUNCTION],
                         ids=["efs", "remote", "efs-all", "remote-all"])
def test_each_mode_resolves_without_a_dangling_reference(params):
    template = load_cfn()
    resources, outputs = resolve(template, params)
    defined = set(resources) | set(template["Parameters"])
    for name, node in {**resources, **outputs}.items():
        for used in names_used(node):
            assert used.startswith("AWS::") or used in defined, f"{name} refers to {used}, absent in this mode"
        depends = node.get("DependsOn", [])
        for dependency in [depends] if isinstance(depends, str) else depends:
            assert dependency in resources, f"{name} depends on {dependency}, absent in this mode"


def functions_of(resources):
    return {n: r["Properties"] for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}


# Outside the VPC in either mode, and without a database: ingest (the key snapshot), alerts (notify), sign-in.
WITHOUT_DATABASE = {"IngestFunction", "NotifyFunction", "SignInFunction"}


def test_remote_mode_has_no_vpc_and_no_efs():
    resources, outputs = resolve(load_cfn(), REMOTE | EVERY_FUNCTION)
    network = [n for n, r in resources.items() if r["Type"].startswith(("AWS::EC2::", "AWS::EFS::"))]
    assert network == [], "no VPC, subnet, route table, endpoint, security group or EFS resource"
    functions = functions_of(resources)
    assert {"IngestFunction", "ProcessorFunction", "UiFunction", "McpFunction", "RetentionFunction"} <= set(functions)
    for name, fn in functions.items():
        assert "VpcConfig" not in fn and "FileSystemConfigs" not in fn, name
        if name in WITHOUT_DATABASE:
            continue
        env = fn["Environment"]["Variables"]
        assert "SPLAT_DATABASE_PATH" not in env, name
        assert env["SPLAT_DATABASE_URL"] == {"Ref": "DatabaseUrl"}, name
        # The token is a dynamic reference CloudFormation resolves, never a parameter's value.
        assert env["SPLAT_DATABASE_TOKEN"] == {"Fn::Sub": "{{resolve:secretsmanager:${DatabaseTokenSecretId}}}"}, name
    roles = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::IAM::Role"]
    actions = str([p["PolicyDocument"] for role in roles for p in role.get("Policies", [])])
    assert "elasticfilesystem:" not in actions and "ec2:" not in actions, "no EFS or network interface rights"
    assert "FileSystemId" not in outputs and "AccessPointId" not in outputs


def test_efs_mode_is_the_default_and_unchanged():
    resources, outputs = resolve(load_cfn(), EVERY_FUNCTION)
    assert {"Vpc", "FileSystem", "MountTargetA", "MountTargetB", "AccessPoint", "S3Endpoint"} <= set(resources)
    for name, fn in functions_of(resources).items():
        if name in WITHOUT_DATABASE:
            assert "VpcConfig" not in fn, name
            continue
        assert fn["VpcConfig"]["SecurityGroupIds"] == [{"Ref": "FunctionSecurityGroup"}], name
        assert fn["FileSystemConfigs"][0]["LocalMountPath"] == "/mnt/splat", name
        env = fn["Environment"]["Variables"]
        assert env["SPLAT_DATABASE_PATH"] == "/mnt/splat/splat.db" and "SPLAT_DATABASE_URL" not in env, name
        assert "SPLAT_DATABASE_TOKEN" not in env, name
    assert "FileSystemId" in outputs


def test_database_url_is_a_server_url_and_needs_its_token():
    template = load_cfn()
    pattern = re.compile(template["Parameters"]["DatabaseUrl"]["AllowedPattern"])
    for ok in ["", "libsql://splat-me.turso.io", "https://db.example.com:8443", "https://db.example.com/x"]:
        assert pattern.fullmatch(ok), ok
    # Plain http would send the token in clear; user info in the URL would be a second secret in a parameter.
    for bad in ["http://db.example.com", "https://user:pw@db.example.com", "file:///tmp/x.db", "libsql://"]:
        assert not pattern.fullmatch(bad), bad
    [assertion] = template["Rules"]["RemoteDatabaseNeedsToken"]["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "DatabaseTokenSecretId"}, ""]}]}


def test_remote_mode_lints(tmp_path):
    """cfn-lint and `sam validate --lint` on the template with the remote mode as its defaults."""
    text = TEMPLATE.read_text()
    for name, value in REMOTE.items():
        text, n = re.subn(rf"(\n  {name}:\n    Type: String\n    Default: )\"\"", rf'\g<1>"{value}"', text)
        assert n == 1, name
    remote = tmp_path / "template.yaml"
    remote.write_text(text)
    for command in ([tool("cfn-lint"), str(remote)], [tool("sam"), "validate", "--lint", "-t", str(remote)]):
        out = subprocess.run(command, cwd=ROOT, env=offline_env(), capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
