#!/usr/bin/env bash
# The system programs the end-to-end tests and benchmarks drive (and, with --postgres, the PostgreSQL server
# the end-to-end tests use). As root, install the missing programs from
# Debian's packages; otherwise name exactly what is missing and stop.
set -euo pipefail

declare -A needs=(
  [/usr/bin/skopeo]=skopeo
  [/usr/bin/docker-registry]=docker-registry
  [/usr/bin/wrk]=wrk
  [/usr/bin/ab]=apache2-utils
  [/usr/bin/aws]=awscli
  [/usr/bin/age]=age
)
missing=()
for program in "${!needs[@]}"; do
  [ -x "$program" ] || missing+=("${needs[$program]}")
done
if [ ${#missing[@]} -eq 0 ]; then
  :
elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "missing system programs; install these Debian packages: ${missing[*]}" >&2
  echo "  sudo apt-get install ${missing[*]}" >&2
  exit 1
fi

# --postgres: the end-to-end tests also need a PostgreSQL server (the scale-out metadata store).
if [ "${1:-}" = "--postgres" ]; then
  url="${CISTERN_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
  hostport="${url#*@}"; hostport="${hostport%%/*}"
  host="${hostport%:*}"; port="${hostport##*:}"
  [ "$port" = "$hostport" ] && port=5432
  if ! (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
    echo "PostgreSQL is not answering on $host:$port (CISTERN_TEST_POSTGRES_URL=$url)." >&2
    echo "  Debian: sudo apt-get install postgresql && sudo pg_ctlcluster --skip-systemctl-redirect 15 main start" >&2
    echo "  The tests connect as in that URL and create and drop schemas of their own." >&2
    exit 1
  fi
fi
