"""The SAM template's load-bearing properties, read from the YAML itself (the linters check the syntax;
these check the design: single writer, partial batch responses, dead-lettering, storage hygiene, least
privilege, and that the template and the code agree on names)."""

import importlib.util
import json
import re
import tomllib

from conftest import INIT_SCRIPT, ROOT, load_cfn

# Functions that open no database and sit outside the VPC, so that nothing in it needs NAT: alert delivery
# (notify) and OpenID sign-in.
# Functions that never open the database: outside the VPC in either mode, with no mount.
OUTSIDE_THE_VPC = {"IngestFunction", "NotifyFunction", "SignInFunction"}
# Of those, the two that reach neither the queue nor the database's data: alerts (notify) and sign-in.
WITHOUT_STATE = {"NotifyFunction", "SignInFunction"}


def resources_of_type(template, kind):
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def functions(template):
    return resources_of_type(template, "AWS::Serverless::Function")


def param_default(template, value):
    """The number behind `{"Ref": Param}` (its default), or the literal."""
    if isinstance(value, dict) and "Ref" in value:
        return template["Parameters"][value["Ref"]]["Default"]
    return value


def init_module():
    spec = importlib.util.spec_from_file_location("splat_init_for_template_test", INIT_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runtime_architecture_and_build(template):
    glob = template["Globals"]["Function"]
    assert glob["Runtime"] == "provided.al2023"
    assert glob["Handler"] == "bootstrap"
    assert glob["Architectures"] == [{"Ref": "Architecture"}]
    arch = template["Parameters"]["Architecture"]
    assert arch["Default"] == "arm64" and set(arch["AllowedValues"]) == {"arm64", "x86_64"}

    # Every function is built by cargo-lambda from the workspace root, and names a binary that exists.
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())
    assert "workspace" in workspace
    packages = {tomllib.loads(p.read_text())["package"]["name"] for p in ROOT.glob("functions/*/Cargo.toml")}
    fns = functions(template)
    assert set(fns) == {"IngestFunction", "ProcessorFunction", "UiFunction", "McpFunction", "RetentionFunction",
                        "NotifyFunction", "SignInFunction"}
    for name, fn in fns.items():
        assert fn["Metadata"]["BuildMethod"] == "rust-cargolambda", name
        assert fn["Metadata"]["BuildProperties"]["Binary"] in packages, name
        assert (ROOT / "infra" / fn["Properties"]["CodeUri"]).resolve() == ROOT, name


def test_processor_is_a_single_writer_with_partial_batch_responses(template):
    proc = template["Resources"]["ProcessorFunction"]["Properties"]
    event = proc["Events"]["Queue"]
    assert event["Type"] == "SQS"
    props = event["Properties"]
    assert props["Queue"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["ScalingConfig"]["MaximumConcurrency"] == 2  # the smallest value SQS triggers accept
    assert 1 <= param_default(template, props["BatchSize"]) <= 10000
    assert "MaximumBatchingWindowInSeconds" in props
    # Reserved concurrency never below the trigger's maximum, or the trigger's invocations are throttled
    # and come back with their receive counts raised: the maximum, plus one for the monitor tick.
    reserved = proc["ReservedConcurrentExecutions"]
    assert reserved == {"Fn::If": ["ReserveConcurrency", props["ScalingConfig"]["MaximumConcurrency"] + 1, {"Ref": "AWS::NoValue"}]}
    assert template["Parameters"]["ReserveProcessorConcurrency"]["Default"] == "true"


def test_queue_visibility_and_dead_letters(template):
    queue = template["Resources"]["Queue"]["Properties"]
    proc = template["Resources"]["ProcessorFunction"]["Properties"]
    window = template["Parameters"]["ProcessorBatchWindow"]
    # AWS: visibility timeout >= 6 x the function timeout (throttled retries), plus the batching window.
    assert queue["VisibilityTimeout"] >= 6 * proc["Timeout"] + window["MaxValue"]
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    max_receive = template["Parameters"][redrive["maxReceiveCount"]["Ref"]]
    assert max_receive["MinValue"] >= 5 and max_receive["Default"] >= 5
    dlq = template["Resources"]["DeadLetterQueue"]["Properties"]
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    assert queue["SqsManagedSseEnabled"] and dlq["SqsManagedSseEnabled"]


def test_bucket_is_private_encrypted_and_expires_claim_checks(template):
    bucket = template["Resources"]["Bucket"]
    props = bucket["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(props["PublicAccessBlockConfiguration"].values()) and len(props["PublicAccessBlockConfiguration"]) == 4
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    claim = rules["ExpireClaimChecks"]
    assert claim["Status"] == "Enabled" and claim["Prefix"] == "ingest/"
    # A body must outlive every message that can still point at it: one in the dead-letter queue (which
    # keeps its first enqueue time) redriven to the queue at the last moment.
    res = template["Resources"]
    lives = res["Queue"]["Properties"]["MessageRetentionPeriod"] + res["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"]
    assert claim["ExpirationInDays"] * 86400 >= lives
    assert claim["ExpirationInDays"] <= 30  # and leftovers still go
    # Source map chunks of an upload never assembled go within days; assembled bundles are retention's.
    chunks = rules["ExpireUnassembledChunks"]
    assert chunks["Status"] == "Enabled" and chunks["Prefix"] == "artifacts/chunks/" and chunks["ExpirationInDays"] <= 7
    # Data outlives the stack.
    assert bucket["DeletionPolicy"] == "Retain"
    assert template["Resources"]["FileSystem"]["DeletionPolicy"] == "Retain"


def test_database_on_efs_through_an_access_point(efs_template):
    template = efs_template
    res = template["Resources"]
    assert res["FileSystem"]["Properties"]["Encrypted"] is True
    assert {res["MountTargetA"]["Type"], res["MountTargetB"]["Type"]} == {"AWS::EFS::MountTarget"}
    for name, fn in functions(template).items():
        if name in OUTSIDE_THE_VPC:
            continue
        props = fn["Properties"]
        assert props["FileSystemConfigs"] == [{"Arn": {"Fn::GetAtt": ["AccessPoint", "Arn"]}, "LocalMountPath": "/mnt/splat"}]
        assert props["Environment"]["Variables"]["SPLAT_DATABASE_PATH"].startswith("/mnt/splat/"), name
        assert "DependsOn" not in fn, name  # it waits for the access point (below), which waits for the mounts
        assert props["VpcConfig"]["SecurityGroupIds"] == [{"Ref": "FunctionSecurityGroup"}]
    assert set(res["AccessPoint"]["DependsOn"]) == {"MountTargetA", "MountTargetB"}  # no function before its mount


def test_ingest_runs_outside_the_vpc_on_the_key_snapshot(template):
    """Ingest opens no database: no VPC, no mount, no database path; it reads the key snapshot, writes claim
    checks and sends to the queue, and may do nothing else."""
    ingest = template["Resources"]["IngestFunction"]
    props = ingest["Properties"]
    assert not {"VpcConfig", "FileSystemConfigs"} & set(props)
    assert "DependsOn" not in ingest
    assert set(props["Environment"]["Variables"]) == {"SPLAT_QUEUE_URL", "SPLAT_BUCKET"}
    statements, actions = role_actions(template, "IngestRole")
    assert actions == {"logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage", "s3:PutObject", "s3:GetObject"}
    by_action = {a: st["Resource"] for st in statements for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
    assert by_action["s3:GetObject"] == {"Fn::Sub": "${Bucket.Arn}/keys/snapshot.json"}
    assert by_action["s3:PutObject"] == {"Fn::Sub": "${Bucket.Arn}/ingest/*"}
    assert by_action["sqs:SendMessage"] == {"Fn::GetAtt": ["Queue", "Arn"]}


def test_every_writer_of_keys_may_publish_the_snapshot_and_nothing_else_may(efs_template):
    """The UI's forms publish the key snapshot after a change; the monitor tick (in the processor) repairs
    it. No other function writes it."""
    snapshot = {"Fn::Sub": "${Bucket.Arn}/keys/snapshot.json"}
    writers = set()
    for name, role in resources_of_type(efs_template, "AWS::IAM::Role").items():
        for st in role["Properties"].get("Policies", [{}])[0].get("PolicyDocument", {}).get("Statement", []):
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            if "s3:PutObject" in actions and st["Resource"] == snapshot:
                writers.add(name)
    assert writers == {"UiRole", "ProcessorRole"}


def test_ingest_front_doors(template):
    res = template["Resources"]
    assert template["Parameters"]["IngestEndpoint"]["AllowedValues"] == ["HttpApi", "FunctionUrl"]
    assert template["Parameters"]["IngestEndpoint"]["Default"] == "HttpApi"
    route = res["HttpApiIngestRoute"]
    assert route["Condition"] == "UseHttpApi" and route["Properties"]["RouteKey"] == "ANY /api/{proxy+}"
    assert res["HttpApiStage"]["Properties"]["StageName"] == "$default"  # no stage prefix in paths
    assert res["HttpApiIngestIntegration"]["Properties"]["PayloadFormatVersion"] == "2.0"
    url = res["IngestFunctionUrl"]
    assert url["Condition"] == "UseFunctionUrl" and url["Properties"]["AuthType"] == "NONE"
    # A public function URL needs both permissions since October 2025.
    perms = [r["Properties"] for r in res.values() if r.get("Condition") == "UseFunctionUrl" and r["Type"] == "AWS::Lambda::Permission"]
    assert {p["Action"] for p in perms} == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
    for name in ("IngestBaseUrl", "IngestHost", "DsnTemplate"):
        assert "Fn::If" in template["Outputs"][name]["Value"], name


def test_least_privilege_roles(efs_template):
    template = efs_template
    roles = resources_of_type(template, "AWS::IAM::Role")
    for name, fn in functions(template).items():
        props = fn["Properties"]
        # Explicit roles: SAM's generated one would carry AWS-managed policies on Resource "*".
        assert "Policies" not in props, f"{name}: use its explicit role"
        role = roles[props["Role"]["Fn::GetAtt"][0]]["Properties"]
        assert "ManagedPolicyArns" not in role, name
        for policy in role["Policies"]:
            for st in policy["PolicyDocument"]["Statement"]:
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                assert all("*" not in a for a in actions), (name, st)
                if st["Resource"] == "*":
                    assert st["Sid"] == "VpcNetworkInterfaces" and all(a.startswith("ec2:") for a in actions), (name, st)
                if any(a.startswith("s3:") for a in actions):
                    # Object actions on one prefix (claim checks, or the lake), or listing the lake only.
                    assert st["Resource"] in (
                        {"Fn::Sub": "${Bucket.Arn}/ingest/*"},
                        {"Fn::Sub": "${Bucket.Arn}/lake/*"},
                        {"Fn::Sub": "${Bucket.Arn}/alerts/*"},
                        {"Fn::Sub": "${Bucket.Arn}/keys/snapshot.json"},
                        {"Fn::Sub": "${Bucket.Arn}/artifacts/*"},
                        {"Fn::Sub": "${Bucket.Arn}/artifacts/bundles/*"},
                        {"Fn::Sub": "${Bucket.Arn}/artifacts/chunks/*"},
                    ) or (
                        actions == ["s3:ListBucket"]
                        and st["Condition"] in (
                            {"StringLike": {"s3:prefix": ["lake/*"]}},
                            # Retention's sweep of chunks never assembled.
                            {"StringLike": {"s3:prefix": ["artifacts/chunks/*"]}},
                        )
                    ), (name, st)
    ingest = roles["IngestRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    processor = roles["ProcessorRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    ingest_actions = {a for st in ingest for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
    processor_actions = {a for st in processor for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
    assert "sqs:SendMessage" in ingest_actions and "sqs:ReceiveMessage" not in ingest_actions
    assert "sqs:ReceiveMessage" in processor_actions and "sqs:SendMessage" not in processor_actions
    assert "s3:PutObject" in ingest_actions and "s3:DeleteObject" not in ingest_actions
    # The processor uploads each batch's parquet files (before the commit registering them) and nothing else
    # under lake/: files are immutable, and only retention deletes them.
    lake = [st for st in processor if st["Resource"] == {"Fn::Sub": "${Bucket.Arn}/lake/*"}]
    assert [st["Action"] for st in lake] == ["s3:PutObject"], lake


def references_to(node, name, path=()):
    """Every place in `node` that refers to parameter `name`: (path, the intrinsic that does)."""
    if isinstance(node, dict):
        if node.get("Ref") == name:
            yield path, node
        sub = node.get("Fn::Sub")
        if isinstance(sub, str) and "${" + name + "}" in sub:
            yield path, node
        for k, v in node.items():
            yield from references_to(v, name, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from references_to(v, name, path + (i,))


def test_no_secret_is_a_plain_parameter(template):
    """A secret never passes through a parameter (NoEcho only hides it from the console; it still sits in
    the stack's parameters). A parameter may NAME a Secrets Manager secret: then it ends in `SecretId`, is
    constrained to name/ARN characters, and is used nowhere but inside a `{{resolve:secretsmanager:...}}`
    dynamic reference (resolved by CloudFormation) or a condition on whether it is set."""
    secret_ids = []
    for name, param in template["Parameters"].items():
        assert "NoEcho" not in param, name
        if re.search(r"secret|password|token|apikey", name, re.I):
            assert name.endswith("SecretId"), f"{name}: take a Secrets Manager secret's name or ARN, not the value"
            assert param["Type"] == "String" and param["AllowedPattern"] == "^[A-Za-z0-9/_+=.@:-]*$", name
            secret_ids.append(name)
    assert "McpTokenSecretId" in secret_ids
    for name in secret_ids:
        # Conditions may test whether it is set; resources and outputs see it only inside the reference.
        uses = list(references_to(template["Resources"], name)) + list(references_to(template["Outputs"], name))
        assert uses, name
        for path, node in uses:
            assert node == {"Fn::Sub": "{{resolve:secretsmanager:${%s}}}" % name}, (name, path, node)


def test_environment_matches_what_the_code_reads(template):
    """Every SPLAT_ and SMTP_ variable the template sets is one the code reads (shared/src/config.rs and the
    modules it delegates to, such as retention's horizons)."""
    sources = "".join(path.read_text() for path in (ROOT / "shared" / "src").rglob("*.rs"))
    known = set(re.findall(r'"((?:SPLAT|SMTP)_[A-Z_]+)"', sources))
    assert {"SPLAT_QUEUE_URL", "SMTP_PASSWORD"} <= known
    for name, fn in functions(template).items():
        env = fn["Properties"]["Environment"]["Variables"]
        for var in env:
            if var.startswith(("SPLAT_", "SMTP_")):
                assert var in known, f"{name} sets {var}, which the code never reads"
        if name in OUTSIDE_THE_VPC:
            assert not {"SPLAT_DATABASE_PATH", "SPLAT_SQLITE_JOURNAL"} & set(env), name
            continue
        assert {"SPLAT_BUCKET", "SPLAT_DATABASE_PATH"} <= set(env), name
        # The database is on EFS, where SQLite's WAL cannot work across hosts.
        assert env["SPLAT_SQLITE_JOURNAL"] == "delete", name
    assert "SPLAT_QUEUE_URL" in functions(template)["IngestFunction"]["Properties"]["Environment"]["Variables"]


def test_emulator_init_script_agrees_with_the_template(template):
    init = init_module()
    queue = template["Resources"]["Queue"]["Properties"]
    dlq = template["Resources"]["DeadLetterQueue"]["Properties"]
    proc = template["Resources"]["ProcessorFunction"]["Properties"]
    ingest = template["Resources"]["IngestFunction"]["Properties"]
    params = template["Parameters"]
    assert init.QUEUE_VISIBILITY_TIMEOUT == queue["VisibilityTimeout"]
    assert init.QUEUE_RETENTION_SECONDS == queue["MessageRetentionPeriod"]
    assert init.DLQ_RETENTION_SECONDS == dlq["MessageRetentionPeriod"]
    assert init.MAX_RECEIVE_COUNT == params["MaxReceiveCount"]["Default"]
    claim = {r["Id"]: r for r in template["Resources"]["Bucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}["ExpireClaimChecks"]
    assert init.CLAIM_CHECK_EXPIRY_DAYS == claim["ExpirationInDays"]
    assert init.PROCESSOR_TIMEOUT == proc["Timeout"]
    assert init.INGEST_TIMEOUT == ingest["Timeout"]
    assert init.PROCESSOR_BATCH_SIZE == params["ProcessorBatchSize"]["Default"]
    assert init.PROCESSOR_BATCH_WINDOW == params["ProcessorBatchWindow"]["Default"]
    assert init.PROCESSOR_MAX_CONCURRENCY == proc["Events"]["Queue"]["Properties"]["ScalingConfig"]["MaximumConcurrency"]
    res = template["Resources"]
    assert init.UI_TIMEOUT == res["UiFunction"]["Properties"]["Timeout"]
    assert init.MCP_TIMEOUT == res["McpFunction"]["Properties"]["Timeout"]
    retention = res["RetentionFunction"]["Properties"]
    assert init.RETENTION_TIMEOUT == retention["Timeout"]
    schedules = {
        (fn["Metadata"]["BuildProperties"]["Binary"], json.loads(e["Properties"]["Input"])["job"]):
            param_default(template, e["Properties"]["ScheduleExpression"])
        for fn, e in schedule_events(template)
    }
    assert schedules == {(function, rule_input["job"]): expr for function, expr, rule_input, _ in init.SCHEDULED_RULES.values()}
    # The same functions, by their cargo-lambda package names, but for notify and sign-in: the compose path
    # runs the UI open and without alert channels, so it has nothing for them to do (tests/lambda runs both).
    outside = {functions(template)[name]["Metadata"]["BuildProperties"]["Binary"] for name in WITHOUT_STATE}
    assert set(init.FUNCTIONS) == {fn["Metadata"]["BuildProperties"]["Binary"] for fn in functions(template).values()} - outside


def test_the_loader_reads_every_intrinsic():
    """Guards the test's own YAML loader: short forms come out as CloudFormation's long forms."""
    t = load_cfn()
    assert t["Resources"]["IngestFunction"]["Properties"]["Role"] == {"Fn::GetAtt": ["IngestRole", "Arn"]}
    assert t["Resources"]["FunctionSecurityGroup"]["Properties"]["VpcId"] == {"Fn::If": ["CreateVpc", {"Ref": "Vpc"}, {"Ref": "VpcId"}]}
    assert t["Conditions"]["McpOnHttpApi"]["Fn::And"][0] == {"Condition": "DeployMcp"}


MANAGED_CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
MANAGED_CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
MANAGED_ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"


def role_actions(template, role):
    statements = template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    return statements, {a for st in statements for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}


def test_ui_function_behind_cloudfront(template):
    res = template["Resources"]
    ui = res["UiFunction"]
    assert ui["Condition"] == "DeployUi"
    assert ui["Metadata"]["BuildProperties"]["Binary"] == "splat-ui"
    env = ui["Properties"]["Environment"]["Variables"]
    # The DSNs the UI prints must name ingest's host, not CloudFront's.
    assert env["SPLAT_PUBLIC_URL"] == template["Outputs"]["IngestBaseUrl"]["Value"]
    assert env["SPLAT_QUEUE_URL"] == {"Ref": "Queue"}

    url = res["UiFunctionUrl"]["Properties"]
    assert url["TargetFunctionArn"] == {"Fn::GetAtt": ["UiFunction", "Arn"]}
    # NONE, not AWS_IAM + OAC: with OAC, Lambda refuses browser form POSTs (no x-amz-content-sha256).
    assert url["AuthType"] == "NONE"
    perms = [r["Properties"] for r in res.values() if r["Type"] == "AWS::Lambda::Permission" and r["Properties"]["FunctionName"] == {"Ref": "UiFunction"}]
    assert {p["Action"] for p in perms} == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}

    dist = res["UiDistribution"]["Properties"]["DistributionConfig"]
    [origin] = [o for o in dist["Origins"] if o["Id"] == "ui-function"]
    assert origin["DomainName"] == {"Fn::Select": [2, {"Fn::Split": ["/", {"Fn::GetAtt": ["UiFunctionUrl", "FunctionUrl"]}]}]}
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    default = dist["DefaultCacheBehavior"]
    assert default["TargetOriginId"] == origin["Id"]
    assert default["ViewerProtocolPolicy"] == "redirect-to-https"
    assert {"GET", "HEAD", "POST"} <= set(default["AllowedMethods"])
    assert default["CachePolicyId"] == MANAGED_CACHING_DISABLED  # pages are never cached
    assert default["OriginRequestPolicyId"] == MANAGED_ALL_VIEWER_EXCEPT_HOST  # cookies, Origin, Sec-Fetch-*
    [static] = [b for b in dist["CacheBehaviors"] if b["TargetOriginId"] == origin["Id"]]
    assert static["PathPattern"] == "/static/*" and static["CachePolicyId"] == MANAGED_CACHING_OPTIMIZED
    assert static["AllowedMethods"] == ["GET", "HEAD"]

    # Host is the function URL's at the origin, so the viewer's Host travels as x-forwarded-host, which is
    # the header the UI's CSRF Origin check and its DSN fallback read.
    [assoc] = default["FunctionAssociations"]
    assert assoc == {"EventType": "viewer-request", "FunctionARN": {"Fn::GetAtt": ["UiForwardedHost", "FunctionARN"]}}
    fn = res["UiForwardedHost"]["Properties"]
    assert fn["AutoPublish"] is True and fn["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    assert "request.headers['x-forwarded-host'] = { value: request.headers.host.value }" in fn["FunctionCode"]
    for source in ("csrf.rs", "mod.rs"):
        assert '"x-forwarded-host"' in (ROOT / "shared" / "src" / "web" / source).read_text(), source


def test_the_ui_is_never_deployed_open(template):
    """No UI without sign-in: off by default, and the rule refuses EnableUi=true without an OIDC issuer."""
    assert template["Parameters"]["EnableUi"]["Default"] == "false"
    assert template["Conditions"]["DeployUi"] == {"Fn::Equals": [{"Ref": "EnableUi"}, "true"]}
    rule = template["Rules"]["UiNeedsSignIn"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "EnableUi"}, "true"]}
    [assertion] = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "OidcDiscoveryUrl"}, ""]}]}
    # And sign-in itself must be whole (the older rule).
    assert "SignInComplete" in template["Rules"]


def test_the_ui_answers_only_through_cloudfront(template):
    """CloudFront adds the origin secret; the function gets the same value and refuses requests without it."""
    res = template["Resources"]
    secret = {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}
    for origin in res["UiDistribution"]["Properties"]["DistributionConfig"]["Origins"]:
        headers = {h["HeaderName"]: h["HeaderValue"] for h in origin["OriginCustomHeaders"]}
        assert headers["x-splat-origin-secret"] == secret, origin["Id"]
    for function in ("UiFunction", "SignInFunction"):
        env = res[function]["Properties"]["Environment"]["Variables"]
        assert env["SPLAT_ORIGIN_SECRET"] == secret, function
    src = ROOT / "shared" / "src"
    assert '"SPLAT_ORIGIN_SECRET"' in (src / "config.rs").read_text()
    assert '"x-splat-origin-secret"' in (src / "web" / "front_door.rs").read_text()
    assert "with_origin_secret(config.origin_secret" in (ROOT / "functions" / "ui" / "src" / "main.rs").read_text()


def test_public_functions_have_a_concurrency_cap(template):
    """A flood on a public URL is throttled at a cap, not scaled into a bill; 0 lifts the cap."""
    res = template["Resources"]
    params = template["Parameters"]
    for function, cap, condition in [
        ("IngestFunction", "IngestConcurrencyCap", "CapIngest"),
        ("UiFunction", "UiConcurrencyCap", "CapUi"),
        ("McpFunction", "McpConcurrencyCap", "CapMcp"),
        ("SignInFunction", "UiConcurrencyCap", "CapUi"),
    ]:
        props = res[function]["Properties"]
        assert props["ReservedConcurrentExecutions"] == {"Fn::If": [condition, {"Ref": cap}, {"Ref": "AWS::NoValue"}]}, function
        assert template["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": cap}, 0]}]}
        assert params[cap]["Default"] > 0 and params[cap]["MinValue"] == 0


def test_a_dead_letter_raises_an_alarm(template):
    res = template["Resources"]
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm")
    [alarm] = [a["Properties"] for a in alarms.values() if a["Properties"]["Namespace"] == "AWS/SQS"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] == {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]}
    topic = res["AlarmTopic"]
    assert topic["Condition"] == "HasAlarmEmail"
    assert topic["Properties"]["Subscription"] == [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}]


def test_mcp_function_and_its_front_doors(template):
    res = template["Resources"]
    mcp = res["McpFunction"]
    assert mcp["Condition"] == "DeployMcp"
    assert mcp["Metadata"]["BuildProperties"]["Binary"] == "splat-mcp"
    env = mcp["Properties"]["Environment"]["Variables"]
    assert env["MCP_AUTH_TOKEN"] == {"Fn::Sub": "{{resolve:secretsmanager:${McpTokenSecretId}}}"}
    assert '"MCP_AUTH_TOKEN"' in (ROOT / "shared" / "src" / "config.rs").read_text()
    assert template["Parameters"]["McpTokenSecretId"]["Default"] == ""  # no secret, no MCP function
    assert template["Conditions"]["DeployMcp"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "McpTokenSecretId"}, ""]}]}
    # Front door A: the ingest HTTP API's `ANY /mcp`; front door B: its own public function URL.
    route = res["HttpApiMcpRoute"]
    assert route["Condition"] == "McpOnHttpApi" and route["Properties"]["RouteKey"] == "ANY /mcp"
    assert route["Properties"]["ApiId"] == {"Ref": "HttpApi"}
    assert res["HttpApiMcpIntegration"]["Properties"]["IntegrationUri"] == {"Fn::GetAtt": ["McpFunction", "Arn"]}
    assert res["HttpApiInvokeMcp"]["Properties"]["SourceArn"]["Fn::Sub"].endswith("/*/*/mcp")
    url = res["McpFunctionUrl"]
    assert url["Condition"] == "McpOnFunctionUrl" and url["Properties"]["AuthType"] == "NONE"
    perms = [r["Properties"] for r in res.values() if r.get("Condition") == "McpOnFunctionUrl" and r["Type"] == "AWS::Lambda::Permission"]
    assert {p["Action"] for p in perms} == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
    conds = template["Conditions"]
    assert conds["McpOnHttpApi"] == {"Fn::And": [{"Condition": "DeployMcp"}, {"Condition": "UseHttpApi"}]}
    assert conds["McpOnFunctionUrl"] == {"Fn::And": [{"Condition": "DeployMcp"}, {"Condition": "UseFunctionUrl"}]}


def test_ui_and_mcp_write_nothing_but_the_database(efs_template):
    """The UI and MCP read the lake; they make no SQS call at all (the queue pill shows the processor's
    recorded lag) and write no object but the UI's key snapshot, sentry-cli's uploads and test alerts. They do write the database (project and
    issue-status changes; never migrations: the processor applies them), and only through the access point."""
    for role in ("UiRole", "McpRole"):
        statements, actions = role_actions(efs_template, role)
        # The UI's one exception: sentry-cli's uploads under artifacts/ (chunks deleted once assembled).
        artifacts = [st for st in statements if st["Sid"] == "Artifacts"]
        if role == "UiRole":
            assert [st["Resource"] for st in artifacts] == [{"Fn::Sub": "${Bucket.Arn}/artifacts/*"}]
        else:
            assert artifacts == []
        others = {a for st in statements if st["Sid"] != "Artifacts"
                  for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
        forbidden = {"s3:DeleteObject", "elasticfilesystem:ClientRootAccess"}
        assert not others & forbidden, (role, others & forbidden)
        assert not any(a.startswith("sqs:") for a in actions), role
        assert {"s3:GetObject", "elasticfilesystem:ClientMount"} <= actions, role
        assert not any(a.startswith(("secretsmanager:", "ssm:", "kms:")) for a in actions), role  # resolved at deploy
        by_sid = {st["Sid"]: st for st in statements}
        assert by_sid["LakeRead"]["Resource"] == {"Fn::Sub": "${Bucket.Arn}/lake/*"}, role
        puts = [st["Resource"] for st in statements if "s3:PutObject" in st["Action"]]
        # And the UI's test alert, put in the outbox for the notify function.
        ui_puts = [{"Fn::Sub": "${Bucket.Arn}/keys/snapshot.json"}, {"Fn::Sub": "${Bucket.Arn}/artifacts/*"},
                   {"Fn::Sub": "${Bucket.Arn}/alerts/*"}]
        assert puts == (ui_puts if role == "UiRole" else []), role
        db = by_sid["Database"]
        assert set(db["Action"]) == {"elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"}, role
        assert db["Condition"] == {"StringEquals": {"elasticfilesystem:AccessPointArn": {"Fn::GetAtt": ["AccessPoint", "Arn"]}}}


def test_outputs(template):
    outputs = template["Outputs"]
    for name in ("IngestBaseUrl", "IngestHost", "DsnTemplate", "QueueUrl", "DeadLetterQueueUrl", "BucketName", "FileSystemId"):
        assert name in outputs, name
    assert outputs["UiUrl"] == {
        "Condition": "DeployUi",
        "Description": outputs["UiUrl"]["Description"],
        "Value": {"Fn::Sub": "https://${UiDistribution.DomainName}"},
    }
    mcp = outputs["McpUrl"]
    assert mcp["Condition"] == "DeployMcp"
    assert mcp["Value"]["Fn::If"][0] == "UseHttpApi"
    assert mcp["Value"]["Fn::If"][1]["Fn::Sub"].endswith("/mcp")
    assert mcp["Value"]["Fn::If"][2] == {"Fn::Sub": "${McpFunctionUrl.FunctionUrl}mcp"}  # the URL ends in /


ALERT_VARIABLES = {
    "SPLAT_ADMIN_EMAILS": {"Ref": "AdminEmails"},
    "SPLAT_EMAIL_FROM": {"Ref": "EmailFrom"},
    "SMTP_ADDRESS": {"Ref": "SmtpAddress"},
    "SMTP_PORT": {"Ref": "SmtpPort"},
    "SMTP_USER_NAME": {"Ref": "SmtpUserName"},
    "SMTP_PASSWORD": {"Fn::If": ["HasSmtpPassword", {"Fn::Sub": "{{resolve:secretsmanager:${SmtpPasswordSecretId}}}"}, ""]},
    "SMTP_AUTHENTICATION": {"Ref": "SmtpAuthentication"},
    "SMTP_STARTTLS_AUTO": {"Ref": "SmtpStartTls"},
    "SPLAT_WEBHOOK_URL": {"Fn::If": ["HasWebhook", {"Fn::Sub": "{{resolve:secretsmanager:${WebhookUrlSecretId}}}"}, ""]},
    "SPLAT_NTFY_URL": {"Ref": "NtfyUrl"},
    "SPLAT_NTFY_TOKEN": {"Fn::If": ["HasNtfyToken", {"Fn::Sub": "{{resolve:secretsmanager:${NtfyTokenSecretId}}}"}, ""]},
}


def test_alerts_are_parameters_with_their_secrets_in_secrets_manager(template, efs_template):
    """The notify function delivers alerts: every channel is a parameter, off by default; the SMTP
    password, the webhook URL and the ntfy token come from Secrets Manager, and only the notify function
    gets them. The processor and the monitor tick put alerts in the outbox when any channel is on."""
    env = template["Resources"]["NotifyFunction"]["Properties"]["Environment"]["Variables"]
    assert {k: env[k] for k in ALERT_VARIABLES} == ALERT_VARIABLES
    params = template["Parameters"]
    for var, value in ALERT_VARIABLES.items():
        if "Ref" in value:
            default = params[value["Ref"]]["Default"]
            # Channels are off by default; the others are settings of a channel, valid as they are.
            assert default == "" or var in ("SMTP_PORT", "SMTP_AUTHENTICATION", "SMTP_STARTTLS_AUTO"), var
    for cond, param in (("HasSmtpPassword", "SmtpPasswordSecretId"), ("HasWebhook", "WebhookUrlSecretId"), ("HasNtfyToken", "NtfyTokenSecretId")):
        assert template["Conditions"][cond] == {"Fn::Not": [{"Fn::Equals": [{"Ref": param}, ""]}]}
    # No other function gets a channel setting.
    for name, fn in functions(template).items():
        if name != "NotifyFunction":
            assert not set(ALERT_VARIABLES) & set(fn["Properties"]["Environment"]["Variables"]), name
    channels = {node["Fn::Not"][0]["Fn::Equals"][0]["Ref"] for node in template["Conditions"]["HasAlerts"]["Fn::Or"]}
    assert channels == {"SmtpAddress", "WebhookUrlSecretId", "NtfyUrl"}
    # The processor decides alerts (after each batch and each monitor tick) and puts them in the outbox;
    # the UI's test-alert button puts its alert in the same outbox; retention alerts nobody.
    for function, role in (("ProcessorFunction", "ProcessorRole"), ("UiFunction", "UiRole")):
        env = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert env["SPLAT_ALERT_OUTBOX"] == {"Fn::If": ["HasAlerts", "true", "false"]}, function
        statements, _ = role_actions(efs_template, role)
        [outbox] = [st for st in statements if st["Sid"] == "AlertOutbox"]
        assert (outbox["Action"], outbox["Resource"]) == ("s3:PutObject", {"Fn::Sub": "${Bucket.Arn}/alerts/*"})
    assert "SPLAT_ALERT_OUTBOX" not in template["Resources"]["RetentionFunction"]["Properties"]["Environment"]["Variables"]
    statements, _ = role_actions(efs_template, "RetentionRole")
    assert not [st for st in statements if "alerts/" in json.dumps(st["Resource"])]
    # No rule asks for a VPC with NAT any more.
    assert "AlertsNeedEgress" not in template["Rules"]
    assert "VpcId" not in json.dumps(template["Rules"]["SignInComplete"])


def test_functions_outside_the_vpc_reach_no_database(template):
    """Notify and sign-in have no VpcConfig, no EFS and no database variable, so they run in either network
    mode and reach the internet without NAT. (Ingest, outside too, is checked on its own above.)"""
    for name in WITHOUT_STATE:
        props = functions(template)[name]["Properties"]
        assert not {"VpcConfig", "FileSystemConfigs"} & set(props), name
        assert "DependsOn" not in functions(template)[name], name
        env = props["Environment"]["Variables"]
        assert not {"SPLAT_DATABASE_PATH", "SPLAT_QUEUE_URL", "SPLAT_BUCKET"} & set(env), name
        _, actions = role_actions(template, props["Role"]["Fn::GetAtt"][0])
        assert actions == {"logs:CreateLogStream", "logs:PutLogEvents"}, name


def test_new_alert_objects_invoke_the_notify_function(template):
    """S3 notifies the notify function of each object under alerts/ (the code's outbox prefix), which may
    read and delete there only; undelivered objects expire; failures are retried by Lambda."""
    res = template["Resources"]
    outbox_rs = (ROOT / "shared" / "src" / "notify" / "outbox.rs").read_text()
    prefix = re.search(r'pub const PREFIX: &str = "([^"]+)";', outbox_rs).group(1)
    bucket = res["Bucket"]
    [config] = bucket["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
    assert config["Event"] == "s3:ObjectCreated:*"
    assert config["Filter"] == {"S3Key": {"Rules": [{"Name": "prefix", "Value": prefix}]}}
    assert config["Function"] == {"Fn::GetAtt": ["NotifyFunction", "Arn"]}
    # S3 checks its permission when the notification is set.
    assert bucket["DependsOn"] == "NotifyInvokePermission"
    permission = res["NotifyInvokePermission"]["Properties"]
    assert permission["Principal"] == "s3.amazonaws.com" and permission["FunctionName"] == {"Ref": "NotifyFunction"}
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    policy = res["NotifyOutboxAccess"]["Properties"]
    assert policy["Roles"] == [{"Ref": "NotifyRole"}]
    [access] = policy["PolicyDocument"]["Statement"]
    assert set(access["Action"]) == {"s3:GetObject", "s3:DeleteObject"}
    assert access["Resource"] == {"Fn::Sub": "${Bucket.Arn}/" + prefix + "*"}
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireAlerts"]["Prefix"] == prefix and rules["ExpireAlerts"]["ExpirationInDays"] <= 30
    invoke = res["NotifyFunction"]["Properties"]["EventInvokeConfig"]
    assert invoke["MaximumRetryAttempts"] == 2


def test_sign_in_paths_go_to_the_sign_in_function(template):
    """CloudFront sends /login/* and /auth/* (the routes that talk to the provider) to the sign-in function's
    URL, uncached, with cookies and query strings and the viewer's host, like the UI's default behavior."""
    res = template["Resources"]
    dist = res["UiDistribution"]["Properties"]["DistributionConfig"]
    [origin] = [o for o in dist["Origins"] if o["Id"] == "signin-function"]
    assert origin["DomainName"] == {"Fn::Select": [2, {"Fn::Split": ["/", {"Fn::GetAtt": ["SignInFunctionUrl", "FunctionUrl"]}]}]}
    behaviors = {b["PathPattern"]: b for b in dist["CacheBehaviors"] if b["TargetOriginId"] == "signin-function"}
    assert set(behaviors) == {"/login/*", "/auth/*"}
    default = dist["DefaultCacheBehavior"]
    for behavior in behaviors.values():
        for key in ("CachePolicyId", "OriginRequestPolicyId", "FunctionAssociations", "ViewerProtocolPolicy"):
            assert behavior[key] == default[key], key
    # The code serves exactly those routes there.
    auth_rs = (ROOT / "shared" / "src" / "web" / "auth" / "mod.rs").read_text()
    router = auth_rs[auth_rs.index("pub fn router"):auth_rs.index("async fn door")]
    assert set(re.findall(r'\.route\("([^"]+)"', router)) == {"/login/start", "/auth/callback"}
    url = res["SignInFunctionUrl"]["Properties"]
    assert url["AuthType"] == "NONE" and url["TargetFunctionArn"] == {"Fn::GetAtt": ["SignInFunction", "Arn"]}
    # The same sign-in settings and session secret as the UI: the cookie one issues, the other checks.
    ui = res["UiFunction"]["Properties"]["Environment"]["Variables"]
    signin = res["SignInFunction"]["Properties"]["Environment"]["Variables"]
    for var in ui:
        if var.startswith("OIDC_") or var in ("SPLAT_ALLOWED_USERS", "SPLAT_ALLOWED_DOMAINS", "SPLAT_SESSION_SECRET"):
            assert signin[var] == ui[var], var


def test_processor_timeout_leaves_room_for_alerts(template):
    """Alerts go out after the commit, within the code's NOTIFY_DEADLINE: the function must outlive both a
    slow batch and that deadline, or a timeout would return an already-committed batch to the queue."""
    lambda_rs = (ROOT / "shared" / "src" / "lambda.rs").read_text()
    deadline = int(re.search(r"NOTIFY_DEADLINE: std::time::Duration = std::time::Duration::from_secs\((\d+)\)", lambda_rs).group(1))
    timeout = template["Resources"]["ProcessorFunction"]["Properties"]["Timeout"]
    assert timeout >= 3 * deadline, (timeout, deadline)


def schedule_events(template):
    """Every (function, ScheduleV2 event) of the template."""
    return [(fn, e) for fn in functions(template).values()
            for e in fn["Properties"].get("Events", {}).values() if e["Type"] == "ScheduleV2"]


def test_scheduled_jobs(template, efs_template):
    """Three EventBridge Scheduler schedules with constant inputs: daily retention in its own function, one run
    at a time; the per-minute monitor tick in the processor (the writer, and the one that migrates: the tick
    starts new code within a minute of a deploy); and every five minutes the migrate job in the retention
    function, for the long migrations the processor leaves to it. Async failures are not retried (the next
    run is the retry)."""
    res = template["Resources"]
    fn = res["RetentionFunction"]
    props = fn["Properties"]
    assert fn["Metadata"]["BuildProperties"]["Binary"] == "splat-retention"
    # One run at a time (it has no queue trigger whose invocations a cap of 1 would throttle).
    assert props["ReservedConcurrentExecutions"] == {"Fn::If": ["ReserveConcurrency", 1, {"Ref": "AWS::NoValue"}]}
    by_job = {}
    for function, event in schedule_events(template):
        job = json.loads(event["Properties"]["Input"])["job"]
        by_job[job] = (function, event["Properties"])
        assert function["Properties"]["EventInvokeConfig"]["MaximumRetryAttempts"] == 0, job
    assert set(by_job) == {"retention", "monitors", "migrate"}
    assert by_job["retention"][0] is fn and by_job["monitors"][0] is res["ProcessorFunction"]
    assert by_job["migrate"][0] is fn
    assert by_job["monitors"][1]["ScheduleExpression"] == "rate(1 minute)"
    # The next migrate job starts and ends within the time the queue holds a message the processor hands
    # back, even at the least MaxReceiveCount allowed.
    migrate_every = by_job["migrate"][1]["ScheduleExpression"]
    assert migrate_every == "rate(5 minutes)"
    assert 5 * 60 + props["Timeout"] < template["Parameters"]["MaxReceiveCount"]["MinValue"] * \
        res["Queue"]["Properties"]["VisibilityTimeout"]
    assert param_default(template, by_job["retention"][1]["ScheduleExpression"]).startswith("cron(")
    for job, (_, schedule) in by_job.items():
        assert schedule["RoleArn"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}, job
        assert schedule["Name"] == {"Fn::Sub": "${AWS::StackName}-" + job}, job  # two stacks never clash
    scheduler = res["SchedulerRole"]["Properties"]
    assert scheduler["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    [invoke] = scheduler["Policies"][0]["PolicyDocument"]["Statement"]
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert invoke["Resource"] == [{"Fn::GetAtt": ["RetentionFunction", "Arn"]}, {"Fn::GetAtt": ["ProcessorFunction", "Arn"]}]

    # Least privilege: the lake (read, write, delete, list) and the database; no queue, no claim checks.
    statements, actions = role_actions(efs_template, "RetentionRole")
    assert not any(a.startswith("sqs:") for a in actions)
    by_sid = {st["Sid"]: st for st in statements}
    assert set(by_sid["LakeReadWriteDelete"]["Action"]) == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    assert by_sid["LakeReadWriteDelete"]["Resource"] == {"Fn::Sub": "${Bucket.Arn}/lake/*"}
    assert all(st["Resource"] != {"Fn::Sub": "${Bucket.Arn}/ingest/*"} for st in statements)

    # Horizons: unset unless given, so the code's defaults apply.
    env = props["Environment"]["Variables"]
    horizons = {
        "SPLAT_MAX_EVENT_LIFE_DAYS": "MaxEventLifeDays",
        "SPLAT_MAX_PAYLOAD_LIFE_DAYS": "MaxPayloadLifeDays",
        "SPLAT_MAX_TRANSACTION_EVENT_LIFE_DAYS": "MaxTransactionEventLifeDays",
        "SPLAT_MAX_SPAN_LIFE_DAYS": "MaxSpanLifeDays",
        "SPLAT_MAX_FILE_LIFE_DAYS": "MaxFileLifeDays",
        "SPLAT_MAX_ROLLUP_LIFE_DAYS": "MaxRollupLifeDays",
        "SPLAT_MAX_LOG_LIFE_DAYS": "MaxLogLifeDays",
    }
    # Every horizon the code reads is a parameter.
    retention_rs = (ROOT / "shared" / "src" / "retention.rs").read_text()
    assert set(re.findall(r'"(SPLAT_MAX_[A-Z_]+_LIFE_DAYS)"', retention_rs)) == set(horizons)
    for var, param in horizons.items():
        cond, value, otherwise = env[var]["Fn::If"]
        assert value == {"Ref": param} and otherwise == {"Ref": "AWS::NoValue"}, var
        assert template["Conditions"][cond] == {"Fn::Not": [{"Fn::Equals": [{"Ref": param}, ""]}]}, var
        assert template["Parameters"][param]["Default"] == "" and template["Parameters"][param]["AllowedPattern"] == "^([1-9][0-9]*)?$"
    # Retention alerts nobody: no channel settings, no secrets.
    assert not set(env) & set(ALERT_VARIABLES)
    assert "RetentionFunctionName" in template["Outputs"]


def test_retention_event_is_a_real_scheduled_event():
    """infra/events/retention-schedule.json is what an EventBridge rule without an input sends."""
    event = json.loads((ROOT / "infra" / "events" / "retention-schedule.json").read_text())
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["detail"] == {} and event["resources"][0].startswith("arn:aws:events:")


def scheduled_jobs_the_code_knows():
    """The job names ScheduledJob::of (shared/src/lambda.rs) accepts."""
    lambda_rs = (ROOT / "shared" / "src" / "lambda.rs").read_text()
    parser = lambda_rs[lambda_rs.index("impl ScheduledJob"):]
    return set(re.findall(r'Some\(Some\("([a-z_]+)"\)\)', parser))


def test_every_enabled_schedule_names_a_job_the_function_knows(template):
    """A schedule whose job the function does not know would fail every tick; one whose job it does know
    must be on. So a schedule is enabled exactly when shared/src/lambda.rs accepts its job: this fails the
    moment the code learns a new job, until its schedule (and the LocalStack rule) is switched on."""
    known = scheduled_jobs_the_code_knows()
    assert "retention" in known
    init = init_module()
    for _, event in schedule_events(template):
        job = json.loads(event["Properties"]["Input"])["job"]
        state = event["Properties"].get("State", "ENABLED")
        assert state == ("ENABLED" if job in known else "DISABLED"), (job, state)
        rule_state = next(s for _, _, j, s in init.SCHEDULED_RULES.values() if j == {"job": job})
        assert rule_state == state, (job, rule_state, state)
