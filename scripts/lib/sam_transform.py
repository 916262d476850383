#!/usr/bin/env python3
"""template.yaml as CloudFormation receives it: the AWS::Serverless-2016-10-31 transform run
offline with samtranslator (the package the SAM CLI uses), for given parameter values, account,
region and stack name. Used by scripts/check-template (the deploy check) and by intake-local
(the local pipeline is built from what this prints).

    scripts/lib/sam_transform.py [--template template.yaml] [--region us-east-1]
        [--account 123456789012] [--stack-name intake-dev] [--param Key=Value ...]

Prints the transformed template as JSON on stdout.
"""
import argparse
import contextlib
import copy
import io
import json
import logging
import os
import sys

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# samtranslator only needs a region name; keep it away from any real credentials or config.
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402


class OfflinePolicies(ManagedPolicyLoader):
    """Consulted only for bare managed-policy names in Policies: lists (intake's template has
    none); the policies SAM adds itself are ARNs."""

    def __init__(self):
        super().__init__(iam_client=None)

    def load(self):
        return {}


def load(path):
    with open(path) as f:
        return yaml_parse(f.read())


def sam_transform(source, parameters, region="us-east-1", account="123456789012", stack_name=None):
    """The transformed template, for `parameters` (values may be lists for list parameters)."""
    sam = copy.deepcopy(source)
    # What `sam package` does to local code: an S3 location in its place. The object key is
    # the local path, so that a local run knows what a function's code or a layer holds.
    for logical_id, res in sam.get("Resources", {}).items():
        props = res.get("Properties", {})
        key = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}.get(res.get("Type"))
        if key and key in props and isinstance(props[key], str):
            props[key] = f"s3://sam-artifacts-{account}-{region}/{props[key].strip('/') or '.'}"
    values = {
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": stack_name or f"intake-{parameters.get('Environment', 'dev')}",
        "AWS::NotificationARNs": [],
    }
    values.update({k: ",".join(v) if isinstance(v, list) else v for k, v in parameters.items()})
    # samtranslator prints feature-toggle notes; keep them out of what callers read.
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return transform(sam, values, OfflinePolicies())
    finally:
        logging.disable(logging.NOTSET)


def declared_table_request(properties, name):
    """A DynamoDB CreateTable request (and the TimeToLiveSpecification, or None) for an
    AWS::DynamoDB::Table's properties, named `name`."""
    request = {
        "TableName": name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    if properties.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    view = (properties.get("StreamSpecification") or {}).get("StreamViewType")
    if view:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        ttl = {"Enabled": ttl.get("Enabled", True), "AttributeName": ttl["AttributeName"]}
    return request, ttl


def main():
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--template", default=os.path.join(os.path.dirname(__file__), "..", "..", "template.yaml"))
    cli.add_argument("--region", default="us-east-1")
    cli.add_argument("--account", default="123456789012")
    cli.add_argument("--stack-name")
    cli.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    args = cli.parse_args()
    params = dict(p.split("=", 1) for p in args.param)
    out = sam_transform(load(args.template), params, args.region, args.account, args.stack_name)
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
