#!/usr/bin/env bash
# The system programs the end-to-end tests and benchmarks drive. As root, install what is missing from
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
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "missing system programs; install these Debian packages: ${missing[*]}" >&2
  echo "  sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
