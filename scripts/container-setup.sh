#!/usr/bin/env bash
# Podman on this machine, ready to build and run deploy/docker/Dockerfile (there is no Docker engine here).
#
# Idempotent; run it as root before `make test-container` (the Makefile target does). It
#   1. installs Debian's podman, runc and mmdebstrap if they are missing;
#   2. writes a containers.conf (runc, cgroupfs, file events, limits capped at the host's) to
#      $CONTAINERS_CONF (default /etc/mloop/containers.conf): every podman call must be given it;
#   3. makes the base image $MLOOP_BASE_IMAGE (default localhost/mloop-base:bookworm) once, with
#      `mmdebstrap --variant=minbase bookworm` from this machine's Debian mirror, trusting this
#      machine's extra CA certificates, and `podman import`s it. It is made again only when the
#      mirror or the certificates change.
# It prints the settings a build needs, e.g. `eval "$(scripts/container-setup.sh)"` sets CONTAINERS_CONF,
# MLOOP_BASE_IMAGE and PIP_INDEX_URL; everything else goes to stderr.
set -euo pipefail

CONF=${CONTAINERS_CONF:-/etc/mloop/containers.conf}
BASE=${MLOOP_BASE_IMAGE:-localhost/mloop-base:bookworm}
SUITE=bookworm
CA_DIR=/usr/local/share/ca-certificates

say() { echo "container-setup: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
  say "run me as root (apt-get, mmdebstrap and rootful podman need it)"
  exit 1
fi

# 1. Packages.
need=()
for pkg in podman runc mmdebstrap; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 2. containers.conf: crun fails on this host's mixed cgroup layout, so runc; podman's default
# ulimits (1048576 open files) exceed the host's hard limit, so they are capped at it.
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
mkdir -p "$(dirname "$CONF")"
conf_text="# Written by scripts/container-setup.sh; podman reads it through CONTAINERS_CONF.
[containers]
default_ulimits = [\"nofile=${nofile}:${nofile}\", \"nproc=32768:32768\"]

[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"
"
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$(printf '%s' "$conf_text")" ]; then
  printf '%s' "$conf_text" >"$CONF"
  say "wrote $CONF"
fi
export CONTAINERS_CONF=$CONF

# 3. The base image. Its apt sources are this machine's enabled Debian sources for the suite
# (deb822 or one-line), so apt inside a build reaches the same mirror the host does.
sources=$(python3 - "$SUITE" <<'PY'
import glob
import re
import sys

suite = sys.argv[1]
wanted = re.compile(rf"^{suite}(-updates|-security|-backports)?$")
stanzas = []
files = ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]
for path in files:  # one-line style: deb [options] URI SUITE COMPONENT...
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError:
        continue
    for line in lines:
        line = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(line) >= 4 and line[0] == "deb" and wanted.match(line[2]):
            stanzas.append((line[1], line[2], line[3:]))
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):  # deb822
    text = open(path, encoding="utf-8").read()
    for block in re.split(r"\n\s*\n", text):
        fields = {}
        for line in block.splitlines():
            if line.startswith("#") or ":" not in line or line[0].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.split()
        if "deb" not in fields.get("types", []) or fields.get("enabled", ["yes"])[0].lower() == "no":
            continue
        for uri in fields.get("uris", []):
            for s in fields.get("suites", []):
                if wanted.match(s):
                    stanzas.append((uri, s, fields.get("components", ["main"])))
if not any(s == suite for _, s, _ in stanzas):
    stanzas.insert(0, ("http://deb.debian.org/debian", suite, ["main"]))
for uri, s, components in stanzas:
    print(f"deb {uri} {s} {' '.join(components)}")
PY
)
shopt -s nullglob globstar
certs=("$CA_DIR"/**/*.crt)
shopt -u nullglob globstar
inputs=$( { echo "$sources"; [ ${#certs[@]} -gt 0 ] && cat "${certs[@]}"; } | sha256sum | cut -c1-16)
have=$(podman image inspect --format '{{ index .Config.Labels "mloop.base.inputs" }}' "$BASE" 2>/dev/null || true)
if [ "$have" != "$inputs" ]; then
  say "making $BASE with mmdebstrap (a few minutes)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  printf '%s\n' "$sources" >"$work/sources.list"
  mkdir -p "$work/ca"
  [ -d "$CA_DIR" ] && cp -r "$CA_DIR/." "$work/ca/"
  mmdebstrap --quiet --variant=minbase --include=ca-certificates \
    --customize-hook="mkdir -p \"\$1$CA_DIR\" && cp -r $work/ca/. \"\$1$CA_DIR/\"" \
    --customize-hook='chroot "$1" update-ca-certificates >/dev/null 2>&1' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "$SUITE" "$work/rootfs.tar" "$work/sources.list"
  podman import --quiet \
    --change "LABEL mloop.base.inputs=$inputs" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    "$work/rootfs.tar" "$BASE" >/dev/null
  say "made $BASE"
fi

# The index pip uses on this host: a build passes it as a build argument, which stays in the builder
# stage and never reaches the final image.
index=${PIP_INDEX_URL:-$(pip3 config get global.index-url 2>/dev/null || true)}
index=${index:-https://pypi.org/simple}
case "$index" in http://* | https://*) ;; *) index=https://pypi.org/simple ;; esac

printf 'export CONTAINERS_CONF=%q\n' "$CONF"
printf 'export MLOOP_BASE_IMAGE=%q\n' "$BASE"
printf 'export PIP_INDEX_URL=%q\n' "$index"
