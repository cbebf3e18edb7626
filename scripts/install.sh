#!/bin/sh
# Installs docker-image-pusher from a GitHub release, on Linux (glibc) and macOS, x86_64 or
# aarch64/arm64. Windows: use install.ps1.
#
#   sh install.sh             # the latest release
#   sh install.sh v0.3.0      # a pinned version ("0.3.0" works too)
#   curl -fsSL <releases>/latest/download/install.sh | sh
#
# Environment:
#   INSTALL_DIR                 where to install (default: ~/.local/bin)
#   DOCKER_PUSHER_RELEASE_BASE  the releases URL (default: https://github.com/$REPO/releases);
#                               assets are fetched from <base>/latest/download/<asset> or
#                               <base>/download/<version>/<asset>
#
# It downloads docker-image-pusher-<target> and SHA256SUMS with curl or wget, checks the
# binary's SHA-256 against SHA256SUMS and installs nothing on a mismatch, then installs it as
# $INSTALL_DIR/docker-image-pusher (mode 755).
set -eu

# The GitHub repository (owner/name) that publishes the releases.
REPO="docker-image-pusher/docker-image-pusher"
NAME="docker-image-pusher"

say() {
  printf '%s\n' "$*"
}

fail() {
  printf 'install.sh: error: %s\n' "$*" >&2
  exit 1
}

usage() {
  say "usage: install.sh [VERSION]   (VERSION: latest (default), v0.3.0, 0.3.0)"
  say "environment: INSTALL_DIR (default ~/.local/bin), DOCKER_PUSHER_RELEASE_BASE"
}

# Sets TARGET from uname: <arch>-unknown-linux-gnu or <arch>-apple-darwin.
detect_target() {
  os=$(uname -s)
  arch=$(uname -m)
  case "$os" in
    Linux) os_part="unknown-linux-gnu" ;;
    Darwin) os_part="apple-darwin" ;;
    MINGW* | MSYS* | CYGWIN* | Windows_NT)
      fail "this is Windows ($os): run install.ps1 in PowerShell instead"
      ;;
    *) fail "unsupported operating system '$os': release binaries exist for Linux and macOS" ;;
  esac
  case "$arch" in
    x86_64 | amd64) arch_part="x86_64" ;;
    aarch64 | arm64) arch_part="aarch64" ;;
    *) fail "unsupported CPU architecture '$arch': release binaries exist for x86_64 and aarch64" ;;
  esac
  # A shell under Rosetta on Apple silicon reports x86_64; the native binary is the better pick.
  if [ "$os_part" = "apple-darwin" ] && [ "$arch_part" = "x86_64" ] &&
    [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || true)" = "1" ]; then
    arch_part="aarch64"
  fi
  if [ "$os_part" = "unknown-linux-gnu" ]; then
    for loader in /lib/ld-musl-*; do
      if [ -e "$loader" ]; then
        say "warning: this system uses musl libc; the Linux binaries need glibc (on Alpine: apk add gcompat)" >&2
      fi
      break
    done
  fi
  TARGET="$arch_part-$os_part"
}

# download URL FILE: fetches URL into FILE with curl or wget; fails on HTTP errors.
download() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1"
  else
    fail "neither curl nor wget is installed: install one of them and run this again"
  fi
}

# sha256_of FILE: prints FILE's SHA-256 in lowercase hex.
sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sum=$(sha256sum "$1")
  elif command -v shasum >/dev/null 2>&1; then
    sum=$(shasum -a 256 "$1")
  elif command -v openssl >/dev/null 2>&1; then
    sum=$(openssl dgst -sha256 -r "$1")
  else
    fail "no sha256sum, shasum or openssl to verify the download with; nothing was installed"
  fi
  printf '%s\n' "${sum%% *}" | tr 'A-F' 'a-f'
}

VERSION="latest"
if [ $# -gt 1 ]; then
  usage >&2
  fail "too many arguments: $*"
fi
if [ $# -eq 1 ]; then
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    latest) ;;
    v[0-9]*) VERSION="$1" ;;
    [0-9]*) VERSION="v$1" ;;
    *) fail "not a version: '$1' (expected latest, v0.3.0 or 0.3.0)" ;;
  esac
  case "$VERSION" in
    *[!A-Za-z0-9.+-]*) fail "not a version: '$1' (expected latest, v0.3.0 or 0.3.0)" ;;
  esac
fi

detect_target
ASSET="$NAME-$TARGET"
BASE="${DOCKER_PUSHER_RELEASE_BASE:-https://github.com/$REPO/releases}"
BASE="${BASE%/}"
if [ "$VERSION" = "latest" ]; then
  URL="$BASE/latest/download"
else
  URL="$BASE/download/$VERSION"
fi

INSTALL_DIR="${INSTALL_DIR:-${HOME:?HOME is not set: set INSTALL_DIR}/.local/bin}"
case "$INSTALL_DIR" in
  /*) ;;
  *) INSTALL_DIR="$(pwd)/$INSTALL_DIR" ;;
esac
while [ "${INSTALL_DIR%/}" != "$INSTALL_DIR" ] && [ "$INSTALL_DIR" != "/" ]; do
  INSTALL_DIR="${INSTALL_DIR%/}"
done

TMP_DIR=$(mktemp -d 2>/dev/null || mktemp -d -t "$NAME")
trap 'rm -rf "$TMP_DIR"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "downloading $URL/$ASSET"
download "$URL/$ASSET" "$TMP_DIR/$ASSET" ||
  fail "could not download $URL/$ASSET (is there a $VERSION release with a $TARGET binary?); nothing was installed"
download "$URL/SHA256SUMS" "$TMP_DIR/SHA256SUMS" ||
  fail "could not download $URL/SHA256SUMS; nothing was installed"

EXPECTED=$(awk -v name="$ASSET" '$2 == name || $2 == ("*" name) { print $1; exit }' \
  "$TMP_DIR/SHA256SUMS" | tr 'A-F' 'a-f')
[ -n "$EXPECTED" ] || fail "$URL/SHA256SUMS has no entry for $ASSET; nothing was installed"
ACTUAL=$(sha256_of "$TMP_DIR/$ASSET")
if [ "$ACTUAL" != "$EXPECTED" ]; then
  fail "checksum mismatch for $ASSET: SHA256SUMS says $EXPECTED but the download is $ACTUAL; nothing was installed"
fi
say "verified sha256 $ACTUAL"

mkdir -p "$INSTALL_DIR" || fail "could not create $INSTALL_DIR (set INSTALL_DIR to a writable directory)"
DEST="$INSTALL_DIR/$NAME"
STAGED="$INSTALL_DIR/.$NAME.$$.tmp"
if ! { cp "$TMP_DIR/$ASSET" "$STAGED" && chmod 755 "$STAGED" && mv -f "$STAGED" "$DEST"; }; then
  rm -f "$STAGED"
  fail "could not write $DEST (set INSTALL_DIR to a writable directory)"
fi

if INSTALLED=$("$DEST" --version 2>/dev/null); then
  say "installed $NAME $INSTALLED to $DEST"
else
  say "installed $NAME ($VERSION) to $DEST"
  say "warning: $DEST --version did not run on this system" >&2
fi
case ":$PATH:" in
  *":$INSTALL_DIR:"*) say "$INSTALL_DIR is on your PATH: run '$NAME --help' to start" ;;
  *)
    say "$INSTALL_DIR is not on your PATH; add it to your shell profile:"
    say "  export PATH=\"$INSTALL_DIR:\$PATH\""
    ;;
esac
