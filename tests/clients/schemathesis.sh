#!/usr/bin/env bash
# schemathesis.sh HTTP_URL TOKEN: fuzzes the REST API against its own
# OpenAPI document (requests valid and malformed, for every operation) and
# fails on any 5xx, an undocumented status code or a non-JSON answer.
# Run by scripts/test with schemathesis from .venv.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
exec "$here/.venv/bin/schemathesis" run "$1/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance \
  -H "Authorization: Bearer $2" --max-examples 40 --workers 2 --seed 1
