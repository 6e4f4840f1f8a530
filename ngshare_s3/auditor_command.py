"""`ngshare-s3 auditor`: a read-only account for people who must see what was submitted, by whom
and when, straight from the bucket (e.g. in MinIO's console), without being able to change it.

`auditor policy` prints the IAM policy (for AWS or any S3 server with IAM-style policies, to
attach yourself); `auditor create` creates that policy and a user holding it on MinIO, through
MinIO's admin API with the endpoint and credentials of the standard AWS_* variables. Exit
status: 0 done, 1 the server refused, 2 misconfiguration.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .stores.errors import StoreConfigError
from .stores.objects.s3 import parse_location


class AuditorError(Exception):
    """A problem the user can fix; the message says what."""


def audit_policy(bucket: str, prefix: str) -> dict[str, Any]:
    """List and read the exchange's objects, nothing else. `prefix` is '' or ends in '/'.
    Listing is limited to the exchange's prefix, so other data in a shared bucket stays hidden."""
    bucket_arn = f"arn:aws:s3:::{bucket}"
    listing: dict[str, Any] = {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [bucket_arn]}
    if prefix:
        listing["Condition"] = {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            listing,
            {"Effect": "Allow", "Action": ["s3:GetBucketLocation"], "Resource": [bucket_arn]},
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"{bucket_arn}/{prefix}*"]},
        ],
    }


def policy_name(bucket: str, prefix: str) -> str:
    """`ngshare-audit-<bucket>[-<prefix>]`, with characters a policy name cannot hold as '-'."""
    name = f"ngshare-audit-{bucket}" + (f"-{prefix.rstrip('/')}" if prefix else "")
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name)


def location(storage: str) -> tuple[str, str]:
    try:
        return parse_location(storage)
    except StoreConfigError as error:
        raise AuditorError(f"--storage: {error}") from None


def read_password(path: str | None) -> tuple[str, bool]:
    """The password from a file (first line), or a new random one; True if generated."""
    if path is None:
        return secrets.token_urlsafe(24), True
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as error:
        raise AuditorError(f"cannot read --password-file {path}: {error.strerror}") from None
    password = lines[0].strip() if lines else ""
    if len(password) < 8:
        raise AuditorError(f"the password in {path} is shorter than 8 characters (MinIO requires 8 to 40)")
    return password, False


def minio_admin() -> Any:
    """MinIO's admin client for the endpoint and credentials the service itself uses."""
    try:
        from minio import MinioAdmin
        from minio.credentials import StaticProvider
    except ImportError:
        raise AuditorError(
            "`ngshare-s3 auditor create` needs the minio package: pip install minio "
            "(on AWS or another S3 server, attach the output of `ngshare-s3 auditor policy` instead)"
        ) from None
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    access_key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not endpoint:
        raise AuditorError("AWS_ENDPOINT_URL must name the MinIO server, e.g. http://minio:9000")
    if not access_key or not secret_key:
        raise AuditorError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must hold MinIO admin credentials")
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise AuditorError(f"AWS_ENDPOINT_URL must be http(s)://host[:port], got {endpoint!r}")
    return MinioAdmin(
        endpoint=parts.netloc,
        credentials=StaticProvider(access_key, secret_key, os.environ.get("AWS_SESSION_TOKEN")),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "",
        secure=parts.scheme == "https",
    )


def create(storage: str, user: str, password_file: str | None) -> None:
    bucket, prefix = location(storage)
    password, generated = read_password(password_file)
    name = policy_name(bucket, prefix)
    admin = minio_admin()
    try:
        admin.policy_add(name, policy=audit_policy(bucket, prefix))
        admin.user_add(user, password)
        attached = json.loads(admin.user_info(user)).get("policyName", "")
        if name not in attached.split(","):
            admin.attach_policy([name], user=user)
    except Exception as error:  # the SDK raises several unrelated types for refusals
        raise RuntimeError(f"MinIO refused: {error}") from error
    print(f"Auditor {user!r} can list and read s3://{bucket}/{prefix} (policy {name}), nothing else.")
    if generated:
        print(f"Its password (shown only now): {password}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ngshare-s3 auditor",
        description="A read-only account on the exchange's bucket or prefix: list and read, "
        "no write, no delete, no other bucket.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    storage_help = "the exchange's storage, s3://bucket/optional/prefix [$NGSHARE_S3_STORAGE]"
    default_storage = os.environ.get("NGSHARE_S3_STORAGE")
    made = commands.add_parser(
        "create",
        help="create the policy and a user holding it on MinIO (endpoint and admin credentials "
        "from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)",
    )
    made.add_argument("--storage", default=default_storage, required=default_storage is None, help=storage_help)
    made.add_argument("--name", default="auditor", help="the user's name (access key), default %(default)s")
    made.add_argument(
        "--password-file",
        metavar="FILE",
        help="read the password (secret key, 8-40 characters) from FILE; without it one is "
        "generated and printed once",
    )
    printed = commands.add_parser("policy", help="print the IAM policy JSON to attach yourself (AWS, others)")
    printed.add_argument("--storage", default=default_storage, required=default_storage is None, help=storage_help)
    return parser


def main(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "policy":
            print(json.dumps(audit_policy(*location(args.storage)), indent=2))
        else:
            create(args.storage, args.name, args.password_file)
    except AuditorError as error:
        print(f"ngshare-s3 auditor: {error}", file=sys.stderr)
        sys.exit(2)
    except RuntimeError as error:
        print(f"ngshare-s3 auditor: {error}", file=sys.stderr)
        sys.exit(1)
