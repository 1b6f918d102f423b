#!/usr/bin/env bash
# Installs the real Flight SQL clients the tests use (sourced by test.sh after setup.sh, whose
# apt_install it uses):
# the Python ADBC driver in a venv under ~/.cache/vcfq, and the Arrow Flight SQL JDBC driver
# from Maven Central; plus openssl (TLS test certificates) and Java/Maven when missing.
# Exports VCFQ_PYTHON and VCFQ_JDBC_JAR for tests/integration/flight.rs.
set -euo pipefail

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
apt_install clients ${need[@]+"${need[@]}"}

cache="$HOME/.cache/vcfq"
venv="$cache/venv"
requirements="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/clients/requirements.txt"
stamp="$venv/.requirements"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$requirements" "$stamp"; then
  echo "clients: installing the ADBC Flight SQL driver into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
fi
export VCFQ_PYTHON="$venv/bin/python"

jdbc_version=18.3.0
jar="$HOME/.m2/repository/org/apache/arrow/flight-sql-jdbc-driver/$jdbc_version/flight-sql-jdbc-driver-$jdbc_version.jar"
if [ ! -f "$jar" ]; then
  echo "clients: fetching the Flight SQL JDBC driver $jdbc_version from Maven Central" >&2
  # into $HOME/.m2 whatever the JVM takes as the home directory (user.home is from the passwd
  # entry, not $HOME)
  mvn -q -Dmaven.repo.local="$HOME/.m2/repository" dependency:get -Dartifact="org.apache.arrow:flight-sql-jdbc-driver:$jdbc_version" >/dev/null
fi
export VCFQ_JDBC_JAR="$jar"
