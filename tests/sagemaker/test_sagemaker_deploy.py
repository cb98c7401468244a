"""src/review_analysis/sagemaker.py against moto's SageMaker, S3 and Application Auto Scaling,
running as a real server (``moto_server``) on a free loopback port."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import boto3
import httpx
import pytest
import yaml

from review_analysis import sagemaker as sagemaker_deploy
from review_analysis.torchserve import free_ports

REGION = "eu-central-1"
BUCKET = "review-models"
IMAGE = "123456789012.dkr.ecr.eu-central-1.amazonaws.com/review-analysis:1"
ROLE = "arn:aws:iam::123456789012:role/review-analysis-sagemaker"
ENDPOINT = "review-test"


@pytest.fixture(scope="module")
def moto_url() -> str:
    port = free_ports(1)[0]
    process = subprocess.Popen(
        [shutil.which("moto_server") or "moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/moto-api/", timeout=2)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture
def aws(moto_url, monkeypatch, tmp_path):
    """Empty moto state, dummy credentials, and a bucket (the deploy script expects one)."""
    httpx.post(f"{moto_url}/moto-api/reset").raise_for_status()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    clients = {
        service: boto3.client(service, region_name=REGION, endpoint_url=moto_url)
        for service in ("s3", "sagemaker", "application-autoscaling")
    }
    clients["s3"].create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return clients


@pytest.fixture
def deployment_file(tmp_path, tiny_store) -> Path:
    """The shipped deployment file with this test's endpoint and the small archives."""
    config = yaml.safe_load(sagemaker_deploy.DEFAULT_CONFIG.read_text())
    config["endpoint"] = ENDPOINT
    config["region"] = REGION
    config["variants"][0]["archives"] = [str(tiny_store / "sentiment.mar")]
    config["variants"][1]["archives"] = [str(tiny_store / "sentiment-2.0.mar")]
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(capsys, moto_url, deployment_file, *args: str) -> list[str]:
    """Run the command line; returns the printed lines."""
    command, *rest = args
    argv = [command, "--config", str(deployment_file), "--endpoint-url", moto_url, *rest]
    assert sagemaker_deploy.main(argv) == 0
    return capsys.readouterr().out.splitlines()


def deploy(capsys, moto_url, deployment_file, release="r1", *extra: str) -> list[str]:
    args = ["--image", IMAGE, "--role", ROLE, "--bucket", BUCKET, "--release", release, *extra]
    return run(capsys, moto_url, deployment_file, "deploy", *args)


def weights(sagemaker) -> dict[str, float]:
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    return {v["VariantName"]: v["CurrentWeight"] for v in endpoint["ProductionVariants"]}


CALL = re.compile(r"^(\[dry-run\] )?([a-z0-9-]+\.[a-z_]+)\(")


def operations(lines: list[str], dry_run: bool) -> list[str]:
    """ "service.operation" of every printed call that was (not) sent."""
    calls = [CALL.match(line) for line in lines]
    return [call.group(2) for call in calls if call and bool(call.group(1)) == dry_run]


def nothing_deployed(aws) -> bool:
    return (
        not aws["sagemaker"].list_models()["Models"]
        and not aws["sagemaker"].list_endpoint_configs()["EndpointConfigs"]
        and not aws["sagemaker"].list_endpoints()["Endpoints"]
        and not aws["application-autoscaling"].describe_scalable_targets(
            ServiceNamespace="sagemaker"
        )["ScalableTargets"]
    )


def test_deploy_creates_two_weighted_variants_with_autoscaling(
    capsys, moto_url, aws, deployment_file, tiny_store
):
    deploy(capsys, moto_url, deployment_file)
    sagemaker = aws["sagemaker"]

    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == f"{ENDPOINT}-r1"
    assert weights(sagemaker) == {"current": 0.9, "candidate": 0.1}

    config = sagemaker.describe_endpoint_config(EndpointConfigName=f"{ENDPOINT}-r1")
    variants = {v["VariantName"]: v for v in config["ProductionVariants"]}
    assert {name: v["ModelName"] for name, v in variants.items()} == {
        "current": f"{ENDPOINT}-current-r1",
        "candidate": f"{ENDPOINT}-candidate-r1",
    }
    assert {v["InstanceType"] for v in variants.values()} == {"ml.c5.xlarge"}
    assert {v["InitialInstanceCount"] for v in variants.values()} == {1}

    for variant, archive in (("current", "sentiment.mar"), ("candidate", "sentiment-2.0.mar")):
        model = sagemaker.describe_model(ModelName=f"{ENDPOINT}-{variant}-r1")
        assert model["ExecutionRoleArn"] == ROLE
        assert model["PrimaryContainer"]["Image"] == IMAGE
        key = f"review-analysis/r1/{variant}/model.tar.gz"
        assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{BUCKET}/{key}"
        # SageMaker unpacks this into /opt/ml/model: the archive must sit at the top level.
        body = aws["s3"].get_object(Bucket=BUCKET, Key=key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
            assert tar.getnames() == [archive]
            assert tar.extractfile(archive).read() == (tiny_store / archive).read_bytes()

    autoscaling = aws["application-autoscaling"]
    targets = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")
    assert {
        (t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets["ScalableTargets"]
    } == {
        (f"endpoint/{ENDPOINT}/variant/current", 1, 4),
        (f"endpoint/{ENDPOINT}/variant/candidate", 1, 4),
    }
    policies = autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")[
        "ScalingPolicies"
    ]
    assert len(policies) == 2
    for policy in policies:
        assert policy["PolicyType"] == "TargetTrackingScaling"
        tracking = policy["TargetTrackingScalingPolicyConfiguration"]
        assert tracking["PredefinedMetricSpecification"] == {
            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
        }
        assert tracking["TargetValue"] == 4400
        assert (tracking["ScaleInCooldown"], tracking["ScaleOutCooldown"]) == (300, 60)


def test_set_weights_shifts_traffic(capsys, moto_url, aws, deployment_file):
    deploy(capsys, moto_url, deployment_file)
    run(capsys, moto_url, deployment_file, "set-weights", "current=0.5", "candidate=0.5")
    assert weights(aws["sagemaker"]) == {"current": 0.5, "candidate": 0.5}


def test_set_weights_refuses_an_unknown_variant(capsys, moto_url, aws, deployment_file):
    deploy(capsys, moto_url, deployment_file)
    with pytest.raises(SystemExit, match="No variant 'blue'"):
        run(capsys, moto_url, deployment_file, "set-weights", "blue=1")
    assert weights(aws["sagemaker"]) == {"current": 0.9, "candidate": 0.1}


def test_dry_run_deploy_prints_every_call_and_sends_none(capsys, moto_url, aws, deployment_file):
    lines = deploy(capsys, moto_url, deployment_file, "r1", "--dry-run")
    assert operations(lines, dry_run=True) == [
        "s3.upload_file",
        "sagemaker.create_model",
        "s3.upload_file",
        "sagemaker.create_model",
        "sagemaker.create_endpoint_config",
        "sagemaker.create_endpoint",
        "application-autoscaling.register_scalable_target",
        "application-autoscaling.put_scaling_policy",
        "application-autoscaling.register_scalable_target",
        "application-autoscaling.put_scaling_policy",
    ]
    assert operations(lines, dry_run=False) == []
    config_line = next(line for line in lines if "create_endpoint_config(" in line)
    assert '"InitialVariantWeight": 0.9' in config_line
    assert nothing_deployed(aws)
    assert "Contents" not in aws["s3"].list_objects_v2(Bucket=BUCKET)


def test_update_plans_a_new_config_keeping_the_other_variant(
    capsys, moto_url, aws, deployment_file
):
    """moto 5.2.5 has no UpdateEndpoint, so the switch itself is checked as a dry run: the
    reads go to moto, the planned writes are printed."""
    deploy(capsys, moto_url, deployment_file)
    lines = run(
        capsys,
        moto_url,
        deployment_file,
        "update",
        "--image",
        IMAGE,
        "--role",
        ROLE,
        "--bucket",
        BUCKET,
        "--release",
        "r2",
        "--variant",
        "candidate",
        "--dry-run",
    )
    assert operations(lines, dry_run=False) == [
        "sagemaker.describe_endpoint",
        "sagemaker.describe_endpoint_config",
    ]
    assert operations(lines, dry_run=True) == [
        "s3.upload_file",
        "sagemaker.create_model",
        "sagemaker.create_endpoint_config",
        "sagemaker.update_endpoint",
    ]
    config_line = next(line for line in lines if "create_endpoint_config" in line)
    assert f'"ModelName": "{ENDPOINT}-current-r1"' in config_line
    assert f'"ModelName": "{ENDPOINT}-candidate-r2"' in config_line
    update_line = next(line for line in lines if "update_endpoint(" in line)
    assert f'EndpointConfigName="{ENDPOINT}-r2"' in update_line
    assert "RetainAllVariantProperties=true" in update_line
    assert len(aws["sagemaker"].list_models()["Models"]) == 2


def test_teardown_deletes_what_deploy_created_and_nothing_else(
    capsys, moto_url, aws, deployment_file
):
    deploy(capsys, moto_url, deployment_file)
    sagemaker = aws["sagemaker"]
    sagemaker.create_model(
        ModelName=f"{ENDPOINT}-unrelated",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE},
    )
    run(capsys, moto_url, deployment_file, "teardown")
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert [m["ModelName"] for m in sagemaker.list_models()["Models"]] == [f"{ENDPOINT}-unrelated"]
    autoscaling = aws["application-autoscaling"]
    assert (
        autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    )
    assert (
        autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    )
    # The artifacts are kept.
    assert aws["s3"].list_objects_v2(Bucket=BUCKET)["KeyCount"] == 2


def test_dry_run_teardown_deletes_nothing(capsys, moto_url, aws, deployment_file):
    deploy(capsys, moto_url, deployment_file)
    lines = run(capsys, moto_url, deployment_file, "teardown", "--dry-run")
    planned = operations(lines, dry_run=True)
    assert planned.count("application-autoscaling.delete_scaling_policy") == 2
    assert planned.count("application-autoscaling.deregister_scalable_target") == 2
    assert planned.count("sagemaker.delete_model") == 2
    assert "sagemaker.delete_endpoint" in planned
    assert "sagemaker.delete_endpoint_config" in planned
    assert weights(aws["sagemaker"]) == {"current": 0.9, "candidate": 0.1}
    assert len(aws["sagemaker"].list_models()["Models"]) == 2
