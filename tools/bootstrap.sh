#!/usr/bin/env bash
# tools/bootstrap.sh — from a fresh Debian 12 (root) to a running Switchyard.
#
#   tools/bootstrap.sh up     install what is missing, build, run `yard up` (the main job)
#   tools/bootstrap.sh test   install what is missing, build, run the test suite
#   tools/bootstrap.sh build  install what is missing and build
#   tools/bootstrap.sh deps   install what is missing
# Extra arguments after `up` go to `yard up` (e.g. --workers 4 --http-port 8080).
# Environment: BUILD_DIR (default build), JOBS (default nproc), CTEST_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-build}
shift || true
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache clang libclang-rt-14-dev
  libcaf-dev libnats-dev nats-server libucx-dev ucx-utils libmsgpack-cxx-dev libspdlog-dev libgtest-dev
  libxxhash-dev libopenblas-dev liburing-dev libcpp-httplib-dev libboost-dev nlohmann-json3-dev libcli11-dev libssl-dev
  zlib1g-dev libtomlplusplus-dev libpcre2-dev libzmq3-dev cppzmq-dev iproute2 curl openssl
)
# Only the test suite needs these: a real Prometheus server and promtool scrape every process (tests/metrics_scrape_test).
TEST_PACKAGES=(prometheus)

install_deps() {
  local missing=() wanted=("${PACKAGES[@]}")
  [ "$mode" != test ] || wanted+=("${TEST_PACKAGES[@]}")
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "bootstrap: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

build() {
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

case "$mode" in
  deps) install_deps ;;
  build) install_deps; build ;;
  up) install_deps; build; exec "$BUILD_DIR/bin/yard" up "$@" ;;
  test)
    install_deps; build
    cd "$BUILD_DIR"
    ctest --output-on-failure -j "$JOBS" --timeout 600 ${CTEST_ARGS:-} "$@"
    ;;
  *) echo "usage: $0 up|test|build|deps [args]" >&2; exit 2 ;;
esac
