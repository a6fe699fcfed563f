"""The stack's idle bill has no hourly line: with every parameter at its default, no resource the template
creates is billed by the hour (or by provisioned capacity, which bills by the hour all the same) whether or
not an event arrives. What it does cost idle is a fixed monthly item (an alarm, a secret, EFS storage),
listed in the README's idle bill."""

from conftest import load_cfn
from test_function_env import Resolver

# Resource types that bill for every hour they exist, and why. A VPC endpoint is checked by its type below:
# a gateway endpoint (S3, DynamoDB) is free.
HOURLY = {
    "AWS::EC2::NatGateway": "$0.045 an hour per gateway, plus per GB",
    "AWS::EC2::Instance": "per hour (or second) while running",
    "AWS::EC2::EIP": "a public IPv4 address, $0.005 an hour",
    "AWS::EC2::VPNConnection": "$0.05 an hour per connection",
    "AWS::EC2::ClientVpnEndpoint": "per hour per associated subnet",
    "AWS::EC2::TransitGateway": "per hour per attachment",
    "AWS::EC2::TransitGatewayAttachment": "per hour per attachment",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "an ALB or NLB, from $0.0225 an hour",
    "AWS::ElasticLoadBalancing::LoadBalancer": "a classic load balancer, $0.025 an hour",
    "AWS::GlobalAccelerator::Accelerator": "$0.025 an hour",
    "AWS::Route53Resolver::ResolverEndpoint": "$0.125 an hour per ENI",
    "AWS::NetworkFirewall::Firewall": "per endpoint hour",
    "AWS::RDS::DBInstance": "per instance hour",
    "AWS::RDS::DBCluster": "per instance or ACU hour (Aurora Serverless v2 never scales to zero by default)",
    "AWS::RDS::DBProxy": "per vCPU hour of the database behind it",
    "AWS::DocDB::DBCluster": "per instance hour",
    "AWS::DocDB::DBInstance": "per instance hour",
    "AWS::Neptune::DBInstance": "per instance hour",
    "AWS::ElastiCache::CacheCluster": "per node hour",
    "AWS::ElastiCache::ReplicationGroup": "per node hour",
    "AWS::ElastiCache::ServerlessCache": "a minimum of data stored per hour",
    "AWS::MemoryDB::Cluster": "per node hour",
    "AWS::OpenSearchService::Domain": "per instance hour",
    "AWS::Elasticsearch::Domain": "per instance hour",
    "AWS::Redshift::Cluster": "per node hour",
    "AWS::MSK::Cluster": "per broker hour",
    "AWS::AmazonMQ::Broker": "per broker hour",
    "AWS::EKS::Cluster": "$0.10 an hour per cluster",
    "AWS::ECS::Service": "Fargate tasks per vCPU and GB hour while running",
    "AWS::SageMaker::Endpoint": "per instance hour",
    "AWS::DirectoryService::MicrosoftAD": "per directory hour",
    "AWS::DirectoryService::SimpleAD": "per directory hour",
    "AWS::Kinesis::Stream": "per shard hour in provisioned mode, per stream hour on demand",
    "AWS::AppRunner::Service": "provisioned memory per hour while idle",
}


def _created(template):
    """The resources CloudFormation creates with every parameter at its default."""
    resolver = Resolver(template, {})
    return {name: r for name, r in template["Resources"].items()
            if "Condition" not in r or resolver.condition(r["Condition"])}, resolver


def _value(resolver, node):
    return node if node is None or isinstance(node, (str, int, float, bool)) else resolver.value(node)


def hourly_lines(template):
    """(resource, why) for every resource of `template` billed by the hour with the default parameters."""
    created, resolver = _created(template)
    lines = []
    for name, resource in created.items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind in HOURLY:
            lines.append((name, HOURLY[kind]))
        elif kind == "AWS::EC2::VPCEndpoint" and _value(resolver, props.get("VpcEndpointType", "Gateway")) != "Gateway":
            lines.append((name, "an interface endpoint, $0.01 an hour per AZ (about $7.30 a month)"))
        elif kind in ("AWS::Serverless::Function", "AWS::Lambda::Alias", "AWS::Lambda::Version") \
                and "ProvisionedConcurrencyConfig" in props:
            lines.append((name, "provisioned concurrency, per GB-second whether invoked or not"))
        elif kind == "AWS::EFS::FileSystem" and _value(resolver, props.get("ThroughputMode")) == "provisioned":
            lines.append((name, "provisioned throughput, per MB/s-month"))
        elif kind == "AWS::DynamoDB::Table" and _value(resolver, props.get("BillingMode", "PROVISIONED")) != "PAY_PER_REQUEST":
            lines.append((name, "provisioned capacity, per RCU and WCU hour"))
        elif kind in ("AWS::ApiGateway::Stage", "AWS::Serverless::Api") and props.get("CacheClusterEnabled"):
            lines.append((name, "an API cache, per hour"))
    return lines


def test_the_default_stack_has_no_hourly_line():
    assert hourly_lines(load_cfn()) == []


def test_the_check_sees_an_interface_endpoint_and_a_nat_gateway():
    """The check itself: the SQS interface endpoint the stack once had (the one hourly line it had) and a
    NAT gateway are each caught; the free S3 gateway endpoint is not."""
    template = load_cfn()
    template["Resources"]["SqsEndpoint"] = {
        "Type": "AWS::EC2::VPCEndpoint", "Condition": "CreateVpc",
        "Properties": {"VpcId": {"Ref": "Vpc"}, "ServiceName": {"Fn::Sub": "com.amazonaws.${AWS::Region}.sqs"},
                       "VpcEndpointType": "Interface", "SubnetIds": [{"Ref": "PrivateSubnetA"}]},
    }
    template["Resources"]["Nat"] = {"Type": "AWS::EC2::NatGateway", "Properties": {}}
    # With your own VPC (VpcId set) the stack creates no endpoint at all, so this one is not created.
    template["Resources"]["NotCreated"] = {
        "Type": "AWS::EC2::VPCEndpoint", "Condition": "UseOidc", "Properties": {"VpcEndpointType": "Interface"}}
    assert sorted(name for name, _ in hourly_lines(template)) == ["Nat", "SqsEndpoint"]
    assert template["Resources"]["S3Endpoint"]["Properties"]["VpcEndpointType"] == "Gateway"
