#!/usr/bin/env bash
# with-postgres.sh runs a command with a Postgres image available to
# testcontainers: a Docker daemon that answers (started here, and stopped on
# exit, when none did) and BROWNOUT_POSTGRES_IMAGE present locally (pulled,
# or built from Debian's packages where no registry answers). With
# BROWNOUT_TEST_DATABASE_URL set, the command runs as it is.
#
#   scripts/with-postgres.sh go test ./gateway/ledger/
set -euo pipefail
source "$(dirname "$0")/docker.sh"

# The reaper image cannot be pulled without a registry, and the host override
# keeps testcontainers' traffic on loopback.
export TESTCONTAINERS_RYUK_DISABLED=${TESTCONTAINERS_RYUK_DISABLED:-true}
export TESTCONTAINERS_HOST_OVERRIDE=${TESTCONTAINERS_HOST_OVERRIDE:-127.0.0.1}
if [ -z "${BROWNOUT_TEST_DATABASE_URL:-}" ]; then
  trap docker_down EXIT
  docker_up
  postgres_image_up
fi
"$@"
