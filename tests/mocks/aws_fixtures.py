"""What AWS would answer, for the prod program under mocks: invokes and the attributes resources expose."""

from __future__ import annotations

import hashlib
import json
import uuid

ACCOUNT = "123456789012"
REGION = "eu-west-1"
# The secret RDS manages for the master user: RDS names it rds!db-<the instance's resource id>.
MASTER_SECRET_ARN = (
    f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!db-0f1e2d3c-aaaa-bbbb-cccc-0123456789ab-AbCdEf"
)
AZS = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]


def aws_calls(token: str, args: dict) -> dict:
    if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        return {"names": AZS, "zoneIds": ["euw1-az1", "euw1-az2", "euw1-az3"], "id": REGION}
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:role/ci", "userId": "AROAEXAMPLE", "id": ACCOUNT}
    if token == "aws:index/getPartition:getPartition":
        return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
    if token == "aws:index/getRegion:getRegion":
        return {"name": REGION, "region": REGION, "id": REGION}
    if token == "aws:elb/getServiceAccount:getServiceAccount":
        return {"arn": "arn:aws:iam::156460612806:root", "id": "156460612806"}
    if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
        return {
            "userName": "AWS",
            "password": "ecr-token-not-a-real-one",
            "authorizationToken": "QVdTOmVjci10b2tlbg==",
            "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
            "id": REGION,
        }
    raise AssertionError(f"unexpected invoke {token}: answer it in aws_fixtures.aws_calls")


def aws_outputs(typ: str, name: str, inputs: dict) -> dict:
    """Attributes the provider would compute (ARNs, names, endpoints) for each resource type."""
    arn = f"arn:aws:{typ.split(':')[1].split('/')[0]}:{REGION}:{ACCOUNT}:{name}"
    out: dict = {"arn": arn}
    if typ == "aws:s3/bucket:Bucket":
        bucket = inputs.get("bucket") or f"{name}-0a1b2c3"
        out.update(bucket=bucket, arn=f"arn:aws:s3:::{bucket}", id=bucket)
    elif typ == "aws:rds/instance:Instance":
        host = f"{inputs['identifier']}.abcdefghijkl.{REGION}.rds.amazonaws.com"
        out.update(address=host, endpoint=f"{host}:5432", port=5432)
        if inputs.get("manageMasterUserPassword"):
            out.update(masterUserSecrets=[{"secretArn": MASTER_SECRET_ARN, "kmsKeyId": inputs.get("masterUserSecretKmsKeyId"),
                                           "secretStatus": "active"}])  # fmt: skip
    elif typ == "aws:ecr/repository:Repository":
        out.update(repositoryUrl=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}", registryId=ACCOUNT, name=name)
    elif typ == "random:index/randomId:RandomId":
        # Deterministic per name and keepers, as the random provider's value is per resource and keepers.
        seed = json.dumps([name, inputs.get("keepers")], sort_keys=True).encode()
        out = {"hex": hashlib.sha256(seed).hexdigest()[: 2 * int(inputs["byteLength"])]}
    elif typ == "docker:index/image:Image":
        repo = str(inputs.get("imageName", "")).split(":")[0]
        out = {"repoDigest": f"{repo}@sha256:{'ab' * 32}", "imageName": inputs.get("imageName")}
    elif typ == "aws:lb/loadBalancer:LoadBalancer":
        out.update(dnsName=f"{name}-1234567890.{REGION}.elb.amazonaws.com", zoneId="Z32O12XQLNTSW2",
                   arnSuffix=f"app/{name}/50dc6c495c0c9188")  # fmt: skip
    elif typ == "aws:lb/targetGroup:TargetGroup":
        out.update(arnSuffix=f"targetgroup/{name}/6d0ecf831eec9f09")
    elif typ == "aws:acm/certificate:Certificate":
        out.update(domainValidationOptions=[{
            "domainName": inputs["domainName"],
            "resourceRecordName": f"_x1.{inputs['domainName']}.",
            "resourceRecordType": "CNAME",
            "resourceRecordValue": "_x2.acm-validations.aws.",
        }])  # fmt: skip
    elif typ == "aws:acm/certificateValidation:CertificateValidation":
        out.update(certificateArn=inputs["certificateArn"])
    elif typ == "aws:route53/record:Record":
        out.update(fqdn=inputs.get("name"))
    elif typ == "aws:iam/role:Role":
        out.update(name=name, arn=f"arn:aws:iam::{ACCOUNT}:role/{name}")
    elif typ in ("aws:ecs/cluster:Cluster", "aws:ecs/service:Service"):
        out.update(name=inputs.get("name") or name)
    elif typ == "aws:kms/key:Key":
        # pulumi-aws 7: a resource may name a region of its own (the backup copy's key and vault).
        out.update(keyId=f"{name}-key-id", arn=f"arn:aws:kms:{inputs.get('region') or REGION}:{ACCOUNT}:key/{name}")
    elif typ == "aws:backup/vault:Vault":
        out.update(name=name, arn=f"arn:aws:backup:{inputs.get('region') or REGION}:{ACCOUNT}:backup-vault:{name}")
    elif typ == "aws:secretsmanager/secret:Secret":
        out.update(arn=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf")
    elif typ == "aws:secretsmanager/secretVersion:SecretVersion":
        # The version's `secretArn` is its secret's; the id is a UUID AWS draws.
        out.update(
            secretArn=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf",
            versionId=str(uuid.UUID(hashlib.md5(name.encode()).hexdigest())),
        )
    elif typ == "aws:elasticache/replicationGroup:ReplicationGroup":
        # What ElastiCache answers for a cluster-mode-disabled group (the TLS name of its primary).
        group = inputs["replicationGroupId"]
        out.update(primaryEndpointAddress=f"master.{group}.abc123.euw1.cache.amazonaws.com",
                   arn=f"arn:aws:elasticache:{REGION}:{ACCOUNT}:replicationgroup:{group}")  # fmt: skip
    elif typ == "aws:ec2/vpcEndpoint:VpcEndpoint":
        out.update(prefixListId="pl-6da54004" if inputs.get("vpcEndpointType") == "Gateway" else None)
    elif typ == "aws:cloudwatch/logGroup:LogGroup":
        # With name_prefix, the provider appends a unique id (26 characters).
        group = inputs.get("name") or f"{inputs['namePrefix']}{hashlib.sha256(name.encode()).hexdigest()[:26]}"
        out.update(name=group, arn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}")
    elif typ == "aws:rds/proxy:Proxy":
        out.update(name=name, endpoint=f"{name}.proxy-abcdefghijkl.{REGION}.rds.amazonaws.com")
    elif typ == "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup":
        out.update(name="default")
    elif typ == "aws:rds/parameterGroup:ParameterGroup" or typ == "aws:rds/subnetGroup:SubnetGroup":
        out.update(name=name)
    return out
