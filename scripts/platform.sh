# Sourced by scripts/bootstrap and scripts/bootstrap-test: which platform this is, and how to install
# Debian packages on it. Supported: Debian 12 (bookworm), Debian 13 (trixie), Ubuntu 24.04 (noble).
# shellcheck shell=bash

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# ID and VERSION_ID from /etc/os-release (e.g. debian 12, ubuntu 24.04).
PLATFORM_ID=$( . /etc/os-release 2>/dev/null && echo "${ID:-unknown}" ) || PLATFORM_ID=unknown
PLATFORM_VERSION=$( . /etc/os-release 2>/dev/null && echo "${VERSION_ID:-}" ) || PLATFORM_VERSION=""
PLATFORM="$PLATFORM_ID-$PLATFORM_VERSION"

platform_check() {
  case "$PLATFORM" in
    debian-12|debian-13|ubuntu-24.04) ;;
    *) echo "$1: warning: $PLATFORM is not a supported platform (Debian 12, Debian 13, Ubuntu 24.04);" \
            "trying Debian's package names" >&2 ;;
  esac
}

# apt_install LABEL PACKAGE...: install the packages that are not installed yet (one apt-get call).
apt_install() {
  local label=$1; shift
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "$label: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
