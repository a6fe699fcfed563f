"""The SAM template's load-bearing properties, read from the YAML itself (the linters check the syntax;
these check the design: single writer, partial batch responses, dead-lettering, storage hygiene, least
privilege, and that the template and the code agree on names)."""

import importlib.util
import re
import tomllib

from conftest import INIT_SCRIPT, ROOT, load_cfn

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
    assert set(fns) == {"IngestFunction", "ProcessorFunction"}
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
    reserved = proc["ReservedConcurrentExecutions"]
    assert reserved == {"Fn::If": ["ReserveConcurrency", 1, {"Ref": "AWS::NoValue"}]}
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
    assert 1 <= param_default(template, claim["ExpirationInDays"]) <= 7
    # Data outlives the stack.
    assert bucket["DeletionPolicy"] == "Retain"
    assert template["Resources"]["FileSystem"]["DeletionPolicy"] == "Retain"


def test_database_on_efs_through_an_access_point(template):
    res = template["Resources"]
    assert res["FileSystem"]["Properties"]["Encrypted"] is True
    assert {res["MountTargetA"]["Type"], res["MountTargetB"]["Type"]} == {"AWS::EFS::MountTarget"}
    for name, fn in functions(template).items():
        props = fn["Properties"]
        assert props["FileSystemConfigs"] == [{"Arn": {"Fn::GetAtt": ["AccessPoint", "Arn"]}, "LocalMountPath": "/mnt/splat"}]
        assert props["Environment"]["Variables"]["SPLAT_DATABASE_PATH"].startswith("/mnt/splat/"), name
        assert set(fn["DependsOn"]) == {"MountTargetA", "MountTargetB"}, name  # no function before its mount
        assert props["VpcConfig"]["SecurityGroupIds"] == [{"Ref": "FunctionSecurityGroup"}]


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


def test_least_privilege_roles(template):
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
                    assert st["Resource"] == {"Fn::Sub": "${Bucket.Arn}/ingest/*"}, (name, st)
    ingest = roles["IngestRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    processor = roles["ProcessorRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    ingest_actions = {a for st in ingest for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
    processor_actions = {a for st in processor for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
    assert "sqs:SendMessage" in ingest_actions and "sqs:ReceiveMessage" not in ingest_actions
    assert "sqs:ReceiveMessage" in processor_actions and "sqs:SendMessage" not in processor_actions
    assert "s3:PutObject" in ingest_actions and "s3:DeleteObject" not in ingest_actions


def test_no_secret_is_a_plain_parameter(template):
    for name, param in template["Parameters"].items():
        assert not re.search(r"secret|password|token|apikey", name, re.I), f"{name}: use Secrets Manager or SSM"
        assert "NoEcho" not in param, name


def test_environment_matches_what_the_code_reads(template):
    """Every SPLAT_ variable the template sets is one shared/src/config.rs reads."""
    config_rs = (ROOT / "shared" / "src" / "config.rs").read_text()
    known = set(re.findall(r'"(SPLAT_[A-Z_]+)"', config_rs))
    assert "SPLAT_QUEUE_URL" in known
    for name, fn in functions(template).items():
        env = fn["Properties"]["Environment"]["Variables"]
        for var in env:
            if var.startswith("SPLAT_"):
                assert var in known, f"{name} sets {var}, which the code never reads"
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
    assert init.CLAIM_CHECK_EXPIRY_DAYS == params["ClaimCheckExpiryDays"]["Default"]
    assert init.PROCESSOR_TIMEOUT == proc["Timeout"]
    assert init.INGEST_TIMEOUT == ingest["Timeout"]
    assert init.PROCESSOR_BATCH_SIZE == params["ProcessorBatchSize"]["Default"]
    assert init.PROCESSOR_BATCH_WINDOW == params["ProcessorBatchWindow"]["Default"]
    assert init.PROCESSOR_MAX_CONCURRENCY == proc["Events"]["Queue"]["Properties"]["ScalingConfig"]["MaximumConcurrency"]


def test_the_loader_reads_every_intrinsic():
    """Guards the test's own YAML loader: short forms come out as CloudFormation's long forms."""
    t = load_cfn()
    assert t["Resources"]["IngestFunction"]["Properties"]["Role"] == {"Fn::GetAtt": ["IngestRole", "Arn"]}
    assert t["Resources"]["FunctionSecurityGroup"]["Properties"]["VpcId"] == {"Fn::If": ["CreateVpc", {"Ref": "Vpc"}, {"Ref": "VpcId"}]}
