#!/usr/bin/env bash
# Release helpers shared by the workflows: source this file, then call one function.

log() {
  echo "[release] $*" >&2
}

build_image() {
  local name="$1"
  docker buildx build --push -t "registry.example.org/acme/${name}:${GITHUB_SHA}" .
}

retag_release() {
  log "promoting $1 to $2"
  docker pull "$1"
  docker tag "$1" "$2"
  docker push "$2"
}

promote_digest() {
  crane copy "$1@$2" "$3"
}
