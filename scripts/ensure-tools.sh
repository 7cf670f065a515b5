#!/usr/bin/env bash
# Installs the Debian packages named on the command line that are missing.
# Each argument is a package whose command has its name (`bzip2`), or
# PACKAGE:PROBE where PROBE is the command to look for, or an absolute path
# (a glob) that the package installs (`postgresql:/usr/lib/postgresql/*/bin/initdb`).
set -euo pipefail
missing=()
for spec in "$@"; do
  package="${spec%%:*}"
  probe="${spec#*:}"
  if [[ "$probe" == /* ]]; then
    compgen -G "$probe" >/dev/null && continue
  else
    command -v "$probe" >/dev/null 2>&1 && continue
  fi
  missing+=("$package")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing packages: ${missing[*]}; install them with your package manager" >&2
  exit 1
fi
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
echo "installing ${missing[*]} with apt-get" >&2
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
