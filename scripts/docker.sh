# docker.sh is sourced by scripts/test.sh: it makes a Docker daemon answer,
# starting one if needed, and stops only the daemon it started.
#
#   docker_up     installs Debian's docker.io when dockerd is missing (root,
#                 apt-get), starts dockerd in the background and waits for it
#   docker_down   stops the dockerd that docker_up started, by its pid

BROWNOUT_DOCKERD_PID=""

docker_up() {
  if docker info >/dev/null 2>&1; then
    echo "docker: a daemon answers; using it"
    return 0
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      echo "docker: no daemon answers and dockerd is not installed; install Docker," \
        "or set BROWNOUT_TEST_DATABASE_URL to an existing Postgres" >&2
      return 1
    fi
    echo "docker: installing Debian's docker.io"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  local log=${TMPDIR:-/tmp}/brownout-dockerd.log
  echo "docker: starting dockerd (log: $log)"
  # No userland proxy: a published port is forwarded by the kernel (NAT on
  # loopback), not by a docker-proxy process per connection, which took a
  # Postgres round trip on 127.0.0.1 from about 55 to 170 us here.
  dockerd --userland-proxy=false >"$log" 2>&1 &
  BROWNOUT_DOCKERD_PID=$!
  local i
  for i in $(seq 1 120); do
    if docker info >/dev/null 2>&1; then
      echo "docker: dockerd (pid $BROWNOUT_DOCKERD_PID) is up after ${i}x0.5s"
      return 0
    fi
    if ! kill -0 "$BROWNOUT_DOCKERD_PID" 2>/dev/null; then
      echo "docker: dockerd exited; last lines of $log:" >&2
      tail -20 "$log" >&2
      BROWNOUT_DOCKERD_PID=""
      return 1
    fi
    sleep 0.5
  done
  echo "docker: dockerd did not answer within 60s; last lines of $log:" >&2
  tail -20 "$log" >&2
  return 1
}

docker_down() {
  [ -n "$BROWNOUT_DOCKERD_PID" ] || return 0
  echo "docker: stopping dockerd (pid $BROWNOUT_DOCKERD_PID), which this run started"
  kill "$BROWNOUT_DOCKERD_PID" 2>/dev/null || true
  local i
  for i in $(seq 1 60); do
    kill -0 "$BROWNOUT_DOCKERD_PID" 2>/dev/null || { BROWNOUT_DOCKERD_PID=""; return 0; }
    sleep 0.5
  done
  echo "docker: dockerd did not stop in 30s; killing it" >&2
  kill -9 "$BROWNOUT_DOCKERD_PID" 2>/dev/null || true
  BROWNOUT_DOCKERD_PID=""
}

# postgres_image_up makes sure the image named by BROWNOUT_POSTGRES_IMAGE (or
# the default) exists locally: pulled when a registry answers, else built
# from Debian's packages by scripts/postgres-image.sh. It exports the name.
postgres_image_up() {
  local image=${BROWNOUT_POSTGRES_IMAGE:-postgres:16-alpine}
  local local_image=brownout/postgres:15
  if docker image inspect "$image" >/dev/null 2>&1; then
    echo "postgres image: $image is present"
  elif timeout 120 docker pull -q "$image" >/dev/null 2>&1; then
    echo "postgres image: pulled $image"
  else
    echo "postgres image: $image is not present and cannot be pulled; using $local_image built from Debian's packages"
    image=$local_image
    "$(dirname "${BASH_SOURCE[0]}")/postgres-image.sh" "$image"
  fi
  export BROWNOUT_POSTGRES_IMAGE=$image
}
