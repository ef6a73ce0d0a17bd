#!/usr/bin/env bash
# Installs pgbench from Debian's PostgreSQL server package if it is missing;
# the benchmark's reference is pgbench's built-in TPC-B transaction.
set -euo pipefail
if command -v pgbench >/dev/null 2>&1; then exit 0; fi
echo "pgbench is missing; installing Debian's postgresql package, which contains it"
if [ "$(id -u)" -ne 0 ]; then
  echo "run as root, or install pgbench yourself (Debian: apt-get install postgresql)" >&2
  exit 1
fi
apt-get install -y --no-install-recommends postgresql >/dev/null ||
  (apt-get update >/dev/null && apt-get install -y --no-install-recommends postgresql >/dev/null)
command -v pgbench >/dev/null
