"""SecurityGroups: every permitted flow, and nothing else (the sign-in flows: test_prod_auth.py)."""

from __future__ import annotations

from tests.mocks.prod_helpers import (
    EGRESS,
    INGRESS,
    SG,
    aws_outputs,
    prod_section,
    rules_of,
    run_prod,
    sg_id,
    task_egress,
)


def test_world_reaches_only_80_and_443_on_the_alb(prod_run):
    alb = sg_id(prod_run, "alb")
    ingress = rules_of(prod_run, INGRESS, alb)
    assert sorted((r["fromPort"], r["toPort"], r["cidrIpv4"]) for r in ingress) == [
        (80, 80, "0.0.0.0/0"),
        (443, 443, "0.0.0.0/0"),
    ]
    assert [(r["fromPort"], r["referencedSecurityGroupId"]) for r in rules_of(prod_run, EGRESS, alb)] == [
        (5000, sg_id(prod_run, "tasks"))
    ]


def test_tasks_accept_only_the_alb_and_reach_only_the_database_the_job_queue_and_the_aws_endpoints(prod_run):
    tasks = sg_id(prod_run, "tasks")
    ingress = rules_of(prod_run, INGRESS, tasks)
    assert [(r["fromPort"], r["toPort"], r.get("referencedSecurityGroupId"), r.get("cidrIpv4")) for r in ingress] == [
        (5000, 5000, sg_id(prod_run, "alb"), None)
    ]
    # No internet: HTTPS to the interface endpoints' group and to S3's prefix list (gateway endpoint).
    s3_prefix_list = aws_outputs("aws:ec2/vpcEndpoint:VpcEndpoint", "s3", {"vpcEndpointType": "Gateway"})[
        "prefixListId"
    ]
    # The database through its proxy (test_prod_database.py), the job queue's port to its group.
    assert task_egress(prod_run) == sorted([(443, sg_id(prod_run, "endpoints")), (443, s3_prefix_list),
                                            (5432, sg_id(prod_run, "proxy")), (6379, sg_id(prod_run, "cache"))])  # fmt: skip
    # The endpoints answer the tasks and the database proxy (its Secrets Manager calls), nothing else.
    endpoint_sources = rules_of(prod_run, INGRESS, sg_id(prod_run, "endpoints"))
    assert sorted((r["fromPort"], r.get("referencedSecurityGroupId")) for r in endpoint_sources) == sorted(
        [(443, tasks), (443, sg_id(prod_run, "proxy"))]
    )
    assert rules_of(prod_run, EGRESS, sg_id(prod_run, "endpoints")) == []


def test_database_is_reachable_only_from_its_proxy_on_5432(prod_run):
    db = sg_id(prod_run, "db")
    ingress = rules_of(prod_run, INGRESS, db)
    assert [
        (r["ipProtocol"], r["fromPort"], r["toPort"], r.get("referencedSecurityGroupId"), r.get("cidrIpv4"))
        for r in ingress
    ] == [("tcp", 5432, 5432, sg_id(prod_run, "proxy"), None)]
    assert rules_of(prod_run, EGRESS, db) == []
    # No inline rules anywhere: every flow is one of the rule resources checked above.
    assert all(not r.plain.get("ingress") and not r.plain.get("egress") for r in prod_run.of_type(SG))


def test_the_job_queue_answers_the_tasks_only_and_starts_nothing(prod_run):
    cache = sg_id(prod_run, "cache")
    ingress = rules_of(prod_run, INGRESS, cache)
    assert [(r["fromPort"], r["toPort"], r.get("referencedSecurityGroupId"), r.get("cidrIpv4")) for r in ingress] == [
        (6379, 6379, sg_id(prod_run, "tasks"), None)
    ]
    assert rules_of(prod_run, EGRESS, cache) == []
    group = prod_run.one("aws:elasticache/replicationGroup:ReplicationGroup").plain
    assert group["securityGroupIds"] == [cache]


def test_without_job_execution_there_is_no_cache_group_and_no_rule_to_it():
    run = run_prod(tracking={**prod_section("tracking"), "jobExecution": False})
    assert [g for g in run.of_type(SG) if g.name.endswith("-cache")] == []
    assert 6379 not in {port for port, _ in task_egress(run)}
    assert run.of_type("aws:elasticache/replicationGroup:ReplicationGroup") == []
