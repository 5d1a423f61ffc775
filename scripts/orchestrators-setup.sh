#!/usr/bin/env bash
# Installs Apache Airflow for the orchestrator tests (tests/integration/export) into its own venv,
# .tools/airflow (gitignored): Airflow's pins clash with mlflow's, so it never goes into .venv. The DAGs
# that `mloop export airflow` writes import only Airflow, so this venv needs no mloop.
#   apache-airflow 3.3.2 + apache-airflow-providers-standard (BashOperator, local mode)
#                        + apache-airflow-providers-cncf-kubernetes (KubernetesPodOperator, kubernetes mode)
# Every other package is pinned by scripts/orchestrators-constraints.txt (Airflow's constraints approach;
# the constraints files Airflow publishes are not reachable here, so this one is ours).
# kfp, for `mloop export kubeflow`, installs into .venv beside mlflow (the dev and kubeflow extras).
# Idempotent: a second run checks the stamp (versions + constraints) and does nothing else (~3 min first).
# Usage: bash scripts/orchestrators-setup.sh   (TOOLS_DIR=... to install elsewhere; PYTHON=... to pick python3)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="${TOOLS_DIR:-$ROOT/.tools}"
PYTHON="${PYTHON:-python3}"
VENV="$TOOLS/airflow"
CONSTRAINTS="$ROOT/scripts/orchestrators-constraints.txt"

PACKAGES=(
  "apache-airflow==3.3.2"
  "apache-airflow-providers-standard==1.21.0"
  "apache-airflow-providers-cncf-kubernetes==10.25.0"
)

stamp="$VENV/.orchestrators-stamp"
want="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') ${PACKAGES[*]} $(sha256sum "$CONSTRAINTS" | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && [ -x "$VENV/bin/airflow" ]; then
  exit 0
fi

echo "orchestrators-setup: installing ${PACKAGES[*]} into $VENV"
mkdir -p "$TOOLS"
"$PYTHON" -m venv --clear "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c "$CONSTRAINTS" "${PACKAGES[@]}"
"$VENV/bin/python" -m pip check
home="$(mktemp -d)"  # `airflow version` writes a default home; keep it out of ~/airflow
version="$(AIRFLOW_HOME="$home" "$VENV/bin/airflow" version 2>/dev/null | tail -n1)"  # fails here, not in a test
rm -rf "$home"
echo "$want" > "$stamp"
echo "orchestrators-setup: Airflow $version in $VENV"
