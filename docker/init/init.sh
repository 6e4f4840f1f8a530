#!/bin/sh
# The trial stack's one-shot init step (docker-compose.yml, service `init`): creates the
# exchange's bucket if it is missing, then the read-only auditor account and its policy
# (`ngshare-s3 auditor create`). Runs in the ngshare_s3 image with MinIO's admin credentials in
# the AWS_* variables; running it again changes nothing but the auditor's password.
#
#   environment: NGSHARE_S3_STORAGE (s3://bucket/prefix), AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
#   AWS_SECRET_ACCESS_KEY, AUDITOR_USER, AUDITOR_PASSWORD
set -eu
: "${NGSHARE_S3_STORAGE:?}" "${AUDITOR_USER:?}" "${AUDITOR_PASSWORD:?}"

python - <<'PY'
import os
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

bucket = urlsplit(os.environ["NGSHARE_S3_STORAGE"]).netloc
client = boto3.client("s3", config=Config(
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
    s3={"addressing_style": "path"},
))
if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
    client.create_bucket(Bucket=bucket)
    print(f"Created bucket {bucket}.")
else:
    print(f"Bucket {bucket} exists.")
PY

password_file="$(mktemp)"
trap 'rm -f "$password_file"' EXIT
printf '%s\n' "$AUDITOR_PASSWORD" > "$password_file"
ngshare-s3 auditor create --name "$AUDITOR_USER" --password-file "$password_file"
