"""Peer of intake's alb function, in Python under awslambdaric (the runtime interface client
Lambda's Python images use). Like the alb function, it builds its AWS clients (DynamoDB, S3)
at init; the benchmark calls only GET /health, which needs neither.
"""
import json

import boto3

dynamodb = boto3.client("dynamodb")
s3 = boto3.client("s3")

JSON = {"content-type": "application/json"}


def handler(event, context):
    if event.get("httpMethod") == "GET" and event.get("path") == "/health":
        return {"statusCode": 200, "statusDescription": "200 OK", "headers": JSON,
                "isBase64Encoded": False, "body": json.dumps({"status": "ok"})}
    return {"statusCode": 404, "statusDescription": "404 Not Found", "headers": JSON,
            "isBase64Encoded": False, "body": json.dumps({"error": "not_found"})}
