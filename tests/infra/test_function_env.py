"""The environment the template gives each function, as CloudFormation would resolve it for a set of
parameters, is accepted by the real configuration parser (shared/src/config.rs, through the `splat`
binary): a parameter default the code refuses, or a value the template misspells, fails here rather than
at the first cold start in someone's account."""

import json
import re
import subprocess

import pytest

from conftest import load_cfn


class Resolver:
    """Just enough of CloudFormation's intrinsics for function environments: parameters (given or their
    defaults), conditions, Fn::If, Fn::Sub, and placeholders for resources and attributes."""

    def __init__(self, template, overrides, secrets=None):
        self.template = template
        self.secrets = secrets or {}
        self.params = {k: str(v.get("Default", "")) for k, v in template["Parameters"].items()}
        self.params.update(overrides)

    def condition(self, node):
        if isinstance(node, str):
            return self.condition(self.template["Conditions"][node])
        (fn, args), = node.items()
        if fn == "Condition":
            return self.condition(args)
        if fn == "Fn::Equals":
            return self.value(args[0]) == self.value(args[1])
        if fn == "Fn::Not":
            return not self.condition(args[0])
        if fn == "Fn::And":
            return all(self.condition(a) for a in args)
        if fn == "Fn::Or":
            return any(self.condition(a) for a in args)
        raise AssertionError(f"unknown condition function {fn}")

    def ref(self, name):
        if name in self.params:
            return self.params[name]
        return f"resolved-{name}"  # a resource: its id or attribute, only known once deployed

    def value(self, node):
        if isinstance(node, (str, int, float)):
            return str(node)
        (fn, args), = node.items()
        if fn == "Ref":
            return self.ref(args)
        if fn == "Fn::If":
            return self.value(args[1] if self.condition(args[0]) else args[2])
        if fn == "Fn::Sub":
            text = re.sub(r"\$\{([^}]+)\}", lambda m: self.ref(m.group(1)), args)
            # A dynamic reference is resolved by CloudFormation from Secrets Manager at deploy time.
            return re.sub(r"\{\{resolve:secretsmanager:([^}]+)\}\}", lambda m: self.secrets[m.group(1)], text)
        if fn in ("Fn::GetAtt", "Fn::Join", "Fn::Select"):
            return f"https://resolved.example/{fn}"
        raise AssertionError(f"unknown intrinsic {fn}")

    def environment(self, function):
        env = self.template["Resources"][function]["Properties"]["Environment"]["Variables"]
        out = {}
        for name, node in env.items():
            if isinstance(node, dict) and node.get("Fn::If"):
                condition, yes, no = node["Fn::If"]
                if (yes if self.condition(condition) else no) == {"Ref": "AWS::NoValue"}:
                    continue  # AWS::NoValue: the variable is not set at all
            out[name] = self.value(node)
        return out


def run_with(splat_bin, env, tmp_path):
    """`splat project list` reads the whole configuration first (Config::from_env), then opens the
    database; the database path is pointed at a scratch file instead of EFS."""
    env = dict(env, SPLAT_DATABASE_PATH=str(tmp_path / "splat.db"), PATH="/usr/bin:/bin")
    return subprocess.run([splat_bin, "project", "list"], env=env, capture_output=True, text=True, timeout=60)


ALERTS_ON = {
    "VpcId": "vpc-0123456789abcdef0",
    "SubnetIds": "subnet-a,subnet-b",
    "AdminEmails": "oncall@example.com, lead@example.com",
    "EmailFrom": "splat@example.com",
    "SmtpAddress": "email-smtp.us-east-1.amazonaws.com",
    "SmtpUserName": "AKIAEXAMPLE",
    "SmtpPasswordSecretId": "splat/smtp-password",
    "WebhookUrlSecretId": "splat/webhook-url",
    "NtfyUrl": "https://ntfy.sh/splat-alerts",
    "NtfyTokenSecretId": "splat/ntfy-token",
}


SECRETS = {
    "splat/oidc-client-secret": "client-secret-0123",
    "splat/session-secret": "s" * 40,
    "splat/smtp-password": "smtp password",
    "splat/webhook-url": "https://hooks.example.com/services/T0/B0/abc",
    "splat/ntfy-token": "tk_0123456789",
}


HORIZONS = {
    "MaxEventLifeDays": "30",
    "MaxPayloadLifeDays": "7",
    "MaxTransactionEventLifeDays": "14",
    "MaxSpanLifeDays": "3",
    "MaxFileLifeDays": "365",
    "MaxRollupLifeDays": "400",
    "MaxLogLifeDays": "10",
}
SIGN_IN = {
    "VpcId": "vpc-1",
    "OidcDiscoveryUrl": "https://login.example.com",
    "OidcClientId": "splat",
    "OidcClientSecretId": "splat/oidc-client-secret",
    "OidcRedirectUri": "https://d111111abcdef8.cloudfront.net/auth/callback",
    "AllowedDomains": "example.com",
    "SessionSecretId": "splat/session-secret",
}
SMTPS = {"SmtpAddress": "smtp.example.com", "SmtpPort": "465", "SmtpAuthentication": "login", "SmtpStartTls": "false", "VpcId": "vpc-1"}


@pytest.mark.parametrize(
    "overrides",
    [{}, ALERTS_ON, SMTPS, HORIZONS, SIGN_IN],
    ids=["defaults", "every-channel", "smtps", "horizons", "sign-in"],
)
def test_every_function_environment_parses(splat_bin, tmp_path, overrides):
    resolver = Resolver(load_cfn(), overrides, SECRETS)
    functions = [n for n, r in resolver.template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]
    for function in functions:
        env = resolver.environment(function)
        out = run_with(splat_bin, env, tmp_path)
        assert out.returncode == 0, (function, env, out.stderr)
    if overrides is HORIZONS:
        env = resolver.environment("RetentionFunction")
        assert env["SPLAT_MAX_PAYLOAD_LIFE_DAYS"] == "7" and env["SPLAT_MAX_ROLLUP_LIFE_DAYS"] == "400"
    if overrides == {}:
        assert not [v for v in resolver.environment("RetentionFunction") if v.startswith("SPLAT_MAX_")]
    ui = resolver.environment("UiFunction")
    if overrides is SIGN_IN:
        assert ui["OIDC_CLIENT_SECRET"] == SECRETS["splat/oidc-client-secret"]
        assert ui["SPLAT_SESSION_SECRET"] == SECRETS["splat/session-secret"]
        assert ui["OIDC_REDIRECT_URI"].endswith("/auth/callback") and ui["SPLAT_ALLOWED_DOMAINS"] == "example.com"
    else:
        # Any OIDC variable turns sign-in on: without OidcDiscoveryUrl none may be set.
        assert not [v for v in ui if v.startswith("OIDC_") or v in ("SPLAT_ALLOWED_USERS", "SPLAT_SESSION_SECRET")]
    if overrides is ALERTS_ON:
        # The channels and their secrets reach the notify function (outside the VPC) only; the functions in
        env = resolver.environment("NotifyFunction")
        assert [env["SMTP_PASSWORD"], env["SPLAT_WEBHOOK_URL"], env["SPLAT_NTFY_TOKEN"]] == [
            SECRETS[k] for k in ("splat/smtp-password", "splat/webhook-url", "splat/ntfy-token")
        ]
        # the VPC (the processor, after each batch and each monitor tick) put alerts in the outbox.
        env = resolver.environment("ProcessorFunction")
        assert env["SPLAT_ALERT_OUTBOX"] == "true" and "SPLAT_WEBHOOK_URL" not in env
        # So does the UI's test-alert button.
        assert ui["SPLAT_ALERT_OUTBOX"] == "true" and "SPLAT_WEBHOOK_URL" not in ui
        assert not {"SPLAT_ALERT_OUTBOX", "SPLAT_WEBHOOK_URL"} & set(resolver.environment("RetentionFunction"))
    if overrides == {}:
        assert resolver.environment("ProcessorFunction")["SPLAT_ALERT_OUTBOX"] == "false"
    if overrides is SIGN_IN:
        signin = resolver.environment("SignInFunction")
        assert {k: v for k, v in signin.items() if k in ui} == {k: ui[k] for k in signin if k in ui}
        assert signin["SPLAT_SESSION_SECRET"] == ui["SPLAT_SESSION_SECRET"] and "SPLAT_DATABASE_PATH" not in signin


@pytest.mark.parametrize("var,value", [("SMTP_STARTTLS_AUTO", "sometimes"), ("SPLAT_MAX_SPAN_LIFE_DAYS", "0")])
def test_a_value_the_code_refuses_fails(splat_bin, tmp_path, var, value):
    """The check is live: the parser rejects what the template's AllowedValues and AllowedPattern keep out."""
    template = load_cfn()
    env = Resolver(template, {}).environment("RetentionFunction")
    out = run_with(splat_bin, dict(env, SMTP_ADDRESS="smtp.example.com", **{var: value}), tmp_path)
    assert out.returncode != 0 and var in out.stderr, out.stderr
    patterns = {p.get("AllowedPattern") for p in template["Parameters"].values() if p.get("AllowedPattern")}
    assert not any(re.fullmatch(p, value) for p in patterns if "[1-9]" in p)  # the template refuses it too


def test_logs_are_json_lines_cloudwatch_filters_by_level(splat_bin, tmp_path):
    """Every function logs in Lambda's JSON format with the platform's START/END/REPORT lines cut (they are
    a third of a quick invocation's log bytes); Lambda then sets AWS_LAMBDA_LOG_FORMAT=JSON and each line the
    code writes must be one JSON object with the `level` CloudWatch filters by."""
    template = load_cfn()
    for name, fn in template["Resources"].items():
        if fn["Type"] == "AWS::Serverless::Function":
            logging = fn["Properties"]["LoggingConfig"]
            assert (logging["LogFormat"], logging["ApplicationLogLevel"], logging["SystemLogLevel"]) == ("JSON", "INFO", "WARN"), name
    env = Resolver(template, {}).environment("ProcessorFunction")
    out = run_with(splat_bin, dict(env, AWS_LAMBDA_LOG_FORMAT="JSON"), tmp_path)
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stderr.splitlines() if line.strip()]
    assert records, "opening a new database logs its migrations"
    assert {r["level"] for r in records} <= {"TRACE", "DEBUG", "INFO", "WARN", "ERROR"}
    assert any(r["fields"]["message"] == "applied database migration" for r in records), records[:3]
