#!/usr/bin/env bash
# Installs what building and testing process-mcp needs on Debian 12 (bookworm). Safe to run
# again: it only installs packages that are missing. Needs root (or sudo).
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config git ca-certificates
  libboost1.81-dev libboost-json1.81-dev
  libvterm-dev libtomlplusplus-dev libspdlog-dev libgtest-dev libssl-dev
  # TLS tests make their certificates with the openssl CLI
  openssl
  # the host sandbox: namespaces through bubblewrap, the seccomp filter through libseccomp
  bubblewrap libseccomp-dev
  # used by the tests: the official MCP client runs on Node.js; interactive programs for TTY tests
  python3 procps vim less
  # the docker executor's tests: a local Docker engine, and busybox and debootstrap to build the
  # test images
  docker.io busybox-static debootstrap
  # the second, TLS-only engine of the docker TLS tests gets a bridge of its own
  iproute2
  # the Debian packages: cpack's dependency scan (dpkg-shlibdeps, file), their check (lintian)
  dpkg-dev file lintian
  # the fuzz harnesses: clang with libFuzzer and the sanitizer runtimes; valgrind watches
  # libvterm, which the sanitizers do not instrument
  clang libclang-rt-14-dev valgrind
  # the package test checks the systemd unit (systemd-analyze) and runs the server as the unit
  # would (setpriv, from util-linux)
  systemd util-linux
)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup: all packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
