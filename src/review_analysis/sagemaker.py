"""Deploy the bundle to a SageMaker real-time endpoint, A/B test model versions, tear down.

    review-analysis sagemaker deploy --image URI --role ARN --bucket BUCKET
    review-analysis sagemaker set-weights current=0.5 candidate=0.5
    review-analysis sagemaker update --image URI --role ARN --bucket BUCKET \\
        --variant candidate
    review-analysis sagemaker teardown

The endpoint, its two production variants, their archives and the autoscaling policy are
described in ``sagemaker/deployment.yaml``. Every AWS call is printed with its arguments.
``--dry-run`` sends no call that changes anything: it prints those and sends only the reads
(describe/list) that ``update`` and ``teardown`` need to know what exists; ``deploy`` and
``set-weights`` then make no call at all. ``--endpoint-url`` points every client at another
implementation of the AWS APIs (moto in the tests).
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import yaml

from review_analysis.paths import REPO

DEFAULT_CONFIG = REPO / "sagemaker" / "deployment.yaml"
# Marks the models and endpoint configs of one endpoint, so teardown deletes only those.
ENDPOINT_TAG = "review-analysis-endpoint"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
READ_PREFIXES = ("describe_", "list_")


@dataclass(frozen=True)
class Variant:
    name: str
    archives: list[Path]
    instance_type: str
    initial_instance_count: int
    initial_weight: float


@dataclass(frozen=True)
class Autoscaling:
    min_capacity: int
    max_capacity: int
    target_invocations_per_instance: float
    scale_in_cooldown: int
    scale_out_cooldown: int


@dataclass(frozen=True)
class Deployment:
    endpoint: str
    region: str
    s3_prefix: str
    variants: list[Variant]
    autoscaling: Autoscaling

    @classmethod
    def load(cls, path: Path) -> Deployment:
        """Read a deployment file; archive paths are relative to the repository."""
        raw = yaml.safe_load(path.read_text())
        variants = [
            Variant(**{**v, "archives": [REPO / archive for archive in v["archives"]]})
            for v in raw["variants"]
        ]
        return cls(
            endpoint=raw["endpoint"],
            region=raw["region"],
            s3_prefix=raw["s3_prefix"],
            variants=variants,
            autoscaling=Autoscaling(**raw["autoscaling"]),
        )

    def variant(self, name: str) -> Variant:
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise SystemExit(f"No variant {name!r} in the deployment: {self.variant_names}")

    @property
    def variant_names(self) -> list[str]:
        return [variant.name for variant in self.variants]

    @property
    def tags(self) -> list[dict[str, str]]:
        return [{"Key": ENDPOINT_TAG, "Value": self.endpoint}]


@dataclass(frozen=True)
class Release:
    """Where one release's artifacts go, and what its resources are called."""

    deployment: Deployment
    name: str  # a UTC timestamp unless given: names in SageMaker are unique and immutable
    image: str
    role: str
    bucket: str

    def model_name(self, variant: Variant) -> str:
        return f"{self.deployment.endpoint}-{variant.name}-{self.name}"

    @property
    def endpoint_config_name(self) -> str:
        return f"{self.deployment.endpoint}-{self.name}"

    def artifact_key(self, variant: Variant) -> str:
        return f"{self.deployment.s3_prefix}/{self.name}/{variant.name}/model.tar.gz"


class Aws:
    """Every AWS call of the script goes through :meth:`call`, which prints it first."""

    def __init__(self, region: str, endpoint_url: str | None = None, dry_run: bool = False):
        self.region = region
        self.endpoint_url = endpoint_url
        self.dry_run = dry_run
        self.clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        # Created on first use: a dry-run deploy needs no credentials at all.
        if service not in self.clients:
            self.clients[service] = boto3.client(
                service, region_name=self.region, endpoint_url=self.endpoint_url
            )
        return self.clients[service]

    def sends(self, operation: str) -> bool:
        return not self.dry_run or operation.startswith(READ_PREFIXES)

    def call(self, service: str, operation: str, **arguments: Any) -> dict[str, Any]:
        sent = self.sends(operation)
        print(f"{'' if sent else '[dry-run] '}{service}.{operation}({format_arguments(arguments)})")
        if not sent:
            return {}
        return getattr(self.client(service), operation)(**arguments) or {}

    def pages(self, service: str, operation: str, key: str, **arguments: Any) -> Iterator[dict]:
        print(f"{service}.{operation}({format_arguments(arguments)})")
        paginator = self.client(service).get_paginator(operation)
        for page in paginator.paginate(**arguments):
            yield from page[key]

    def wait(self, waiter: str, **arguments: Any) -> None:
        """Wait for SageMaker (minutes for an endpoint); nothing to wait for in a dry run."""
        if self.dry_run:
            print(f"[dry-run] wait for sagemaker {waiter}({format_arguments(arguments)})")
            return
        print(f"waiting for sagemaker {waiter}({format_arguments(arguments)}) ...", flush=True)
        self.client("sagemaker").get_waiter(waiter).wait(**arguments)


def format_arguments(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{name}={json.dumps(value)}" for name, value in arguments.items())


# ----- artifacts and models -----------------------------------------------------------------


def package(archives: list[Path], output: Path) -> Path:
    """model.tar.gz with the archives at its top level: SageMaker unpacks it into
    /opt/ml/model, the container's model store. A .mar is already a zip: fast gzip suffices."""
    missing = [str(archive) for archive in archives if not archive.is_file()]
    if missing:
        raise SystemExit(f"Missing archives {missing}: run scripts/prepare_models.sh first")
    output.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(output, "w:gz", compresslevel=1) as tar:
        for archive in archives:
            tar.add(archive, arcname=archive.name)
    print(f"packed {[a.name for a in archives]} into {output} ({output.stat().st_size:,} bytes)")
    return output


def create_model(aws: Aws, release: Release, variant: Variant, workdir: Path) -> str:
    """Upload the variant's archives and create its SageMaker model; returns the model name."""
    artifact = package(variant.archives, workdir / variant.name / "model.tar.gz")
    key = release.artifact_key(variant)
    aws.call("s3", "upload_file", Filename=str(artifact), Bucket=release.bucket, Key=key)
    name = release.model_name(variant)
    aws.call(
        "sagemaker",
        "create_model",
        ModelName=name,
        ExecutionRoleArn=release.role,
        PrimaryContainer={"Image": release.image, "ModelDataUrl": f"s3://{release.bucket}/{key}"},
        Tags=release.deployment.tags,
    )
    return name


def create_endpoint_config(aws: Aws, release: Release, models: dict[str, str]) -> str:
    """One production variant per deployment variant, serving ``models[variant name]``."""
    variants = [
        {
            "VariantName": variant.name,
            "ModelName": models[variant.name],
            "InstanceType": variant.instance_type,
            "InitialInstanceCount": variant.initial_instance_count,
            "InitialVariantWeight": variant.initial_weight,
        }
        for variant in release.deployment.variants
    ]
    aws.call(
        "sagemaker",
        "create_endpoint_config",
        EndpointConfigName=release.endpoint_config_name,
        ProductionVariants=variants,
        Tags=release.deployment.tags,
    )
    return release.endpoint_config_name


def resource_id(deployment: Deployment, variant: str) -> str:
    return f"endpoint/{deployment.endpoint}/variant/{variant}"


def policy_name(deployment: Deployment, variant: str) -> str:
    return f"{deployment.endpoint}-{variant}-invocations"


def enable_autoscaling(aws: Aws, deployment: Deployment) -> None:
    """Target tracking on invocations per instance, for every variant."""
    scaling = deployment.autoscaling
    for variant in deployment.variant_names:
        target = {
            "ServiceNamespace": "sagemaker",
            "ResourceId": resource_id(deployment, variant),
            "ScalableDimension": SCALABLE_DIMENSION,
        }
        aws.call(
            "application-autoscaling",
            "register_scalable_target",
            **target,
            MinCapacity=scaling.min_capacity,
            MaxCapacity=scaling.max_capacity,
        )
        aws.call(
            "application-autoscaling",
            "put_scaling_policy",
            PolicyName=policy_name(deployment, variant),
            PolicyType="TargetTrackingScaling",
            **target,
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": float(scaling.target_invocations_per_instance),
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
                "ScaleInCooldown": scaling.scale_in_cooldown,
                "ScaleOutCooldown": scaling.scale_out_cooldown,
            },
        )


# ----- commands -------------------------------------------------------------------------------


def deploy(aws: Aws, release: Release, workdir: Path) -> None:
    """Artifacts, models, endpoint config, endpoint; autoscaling once it is in service."""
    deployment = release.deployment
    models = {v.name: create_model(aws, release, v, workdir) for v in deployment.variants}
    config = create_endpoint_config(aws, release, models)
    aws.call(
        "sagemaker",
        "create_endpoint",
        EndpointName=deployment.endpoint,
        EndpointConfigName=config,
        Tags=deployment.tags,
    )
    # Application Auto Scaling accepts a variant only once the endpoint is in service.
    aws.wait("endpoint_in_service", EndpointName=deployment.endpoint)
    enable_autoscaling(aws, deployment)


def set_weights(aws: Aws, deployment: Deployment, weights: dict[str, float]) -> None:
    """Shift traffic between variants in place: no new instances, no new config."""
    for name in weights:
        deployment.variant(name)
    aws.call(
        "sagemaker",
        "update_endpoint_weights_and_capacities",
        EndpointName=deployment.endpoint,
        DesiredWeightsAndCapacities=[
            {"VariantName": name, "DesiredWeight": weight} for name, weight in weights.items()
        ],
    )


def update(aws: Aws, release: Release, variants: list[str], workdir: Path) -> None:
    """New models for ``variants``, the others keep theirs, in a new endpoint config.

    SageMaker switches an endpoint to a new config blue/green: it starts the new instances,
    moves the traffic once they pass /ping, then stops the old ones, so nothing is dropped.
    Variant names stay the same and their live weights and instance counts are kept, so the
    autoscaling registration stays valid (SageMaker allows changing a scaled variant's model).
    """
    deployment = release.deployment
    endpoint = aws.call("sagemaker", "describe_endpoint", EndpointName=deployment.endpoint)
    current = aws.call(
        "sagemaker", "describe_endpoint_config", EndpointConfigName=endpoint["EndpointConfigName"]
    )
    models = {v["VariantName"]: v["ModelName"] for v in current["ProductionVariants"]}
    if sorted(models) != sorted(deployment.variant_names):
        raise SystemExit(
            f"The endpoint has variants {sorted(models)}, the deployment file "
            f"{sorted(deployment.variant_names)}: changing variants needs a teardown and deploy."
        )
    for name in variants:
        models[name] = create_model(aws, release, deployment.variant(name), workdir)
    config = create_endpoint_config(aws, release, models)
    aws.call(
        "sagemaker",
        "update_endpoint",
        EndpointName=deployment.endpoint,
        EndpointConfigName=config,
        RetainAllVariantProperties=True,
    )
    aws.wait("endpoint_in_service", EndpointName=deployment.endpoint)


def teardown(aws: Aws, deployment: Deployment) -> None:
    """Autoscaling, the endpoint, and every model and endpoint config tagged with it.

    The S3 artifacts stay: they are the record of what was served.
    """
    disable_autoscaling(aws, deployment)
    if endpoint_exists(aws, deployment.endpoint):
        aws.call("sagemaker", "delete_endpoint", EndpointName=deployment.endpoint)
        aws.wait("endpoint_deleted", EndpointName=deployment.endpoint)
    for config in tagged(aws, deployment, "list_endpoint_configs", "EndpointConfigs"):
        aws.call(
            "sagemaker", "delete_endpoint_config", EndpointConfigName=config["EndpointConfigName"]
        )
    for model in tagged(aws, deployment, "list_models", "Models"):
        aws.call("sagemaker", "delete_model", ModelName=model["ModelName"])


def disable_autoscaling(aws: Aws, deployment: Deployment) -> None:
    resource_ids = [resource_id(deployment, name) for name in deployment.variant_names]
    for target in aws.pages(
        "application-autoscaling",
        "describe_scalable_targets",
        "ScalableTargets",
        ServiceNamespace="sagemaker",
        ResourceIds=resource_ids,
        ScalableDimension=SCALABLE_DIMENSION,
    ):
        where = {
            "ServiceNamespace": "sagemaker",
            "ResourceId": target["ResourceId"],
            "ScalableDimension": SCALABLE_DIMENSION,
        }
        for policy in aws.pages(
            "application-autoscaling", "describe_scaling_policies", "ScalingPolicies", **where
        ):
            aws.call(
                "application-autoscaling",
                "delete_scaling_policy",
                PolicyName=policy["PolicyName"],
                **where,
            )
        aws.call("application-autoscaling", "deregister_scalable_target", **where)


def endpoint_exists(aws: Aws, name: str) -> bool:
    endpoints = aws.pages("sagemaker", "list_endpoints", "Endpoints", NameContains=name)
    return any(endpoint["EndpointName"] == name for endpoint in endpoints)


def tagged(aws: Aws, deployment: Deployment, operation: str, key: str) -> list[dict[str, Any]]:
    """Resources of ``operation`` that carry this endpoint's tag."""
    arn_key = "ModelArn" if key == "Models" else "EndpointConfigArn"
    return [
        resource
        for resource in aws.pages("sagemaker", operation, key, NameContains=deployment.endpoint)
        if deployment.tags[0]
        in aws.call("sagemaker", "list_tags", ResourceArn=resource[arn_key])["Tags"]
    ]


# ----- command line ---------------------------------------------------------------------------


def parse_weight(text: str) -> tuple[str, float]:
    name, _, weight = text.partition("=")
    try:
        return name, float(weight)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected VARIANT=WEIGHT, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="deployment file")
    common.add_argument("--region", help="AWS region (default: the deployment file's)")
    common.add_argument("--endpoint-url", help="send every AWS call here (e.g. moto)")
    common.add_argument("--dry-run", action="store_true", help="print changes, send none")

    release = argparse.ArgumentParser(add_help=False)
    release.add_argument("--image", required=True, help="the image URI in ECR")
    release.add_argument("--role", required=True, help="SageMaker execution role ARN")
    release.add_argument("--bucket", required=True, help="S3 bucket for model.tar.gz")
    release.add_argument("--release", help="release name (default: UTC timestamp)")

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("deploy", parents=[common, release], help="create everything")
    weights = commands.add_parser("set-weights", parents=[common], help="shift traffic")
    weights.add_argument("weights", nargs="+", type=parse_weight, metavar="VARIANT=WEIGHT")
    new = commands.add_parser("update", parents=[common, release], help="new model version")
    new.add_argument("--variant", action="append", help="variant to update (default: all)")
    commands.add_parser("teardown", parents=[common], help="delete the endpoint and its models")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    deployment = Deployment.load(args.config)
    aws = Aws(args.region or deployment.region, args.endpoint_url, args.dry_run)
    if args.command == "set-weights":
        set_weights(aws, deployment, dict(args.weights))
    elif args.command == "teardown":
        teardown(aws, deployment)
    else:
        name = args.release or datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        release = Release(deployment, name, args.image, args.role, args.bucket)
        with tempfile.TemporaryDirectory(prefix="sagemaker-") as workdir:
            if args.command == "deploy":
                deploy(aws, release, Path(workdir))
            else:
                update(aws, release, args.variant or deployment.variant_names, Path(workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
