#!/usr/bin/env bash
# tools/fuzz.sh [SECONDS] — build the msgpack/JSON decoder fuzzer with clang's
# libFuzzer (+ASan/UBSan) and run it for a bounded time (default 60 s) from the
# saved corpus. A crash leaves crash-* files: copy each into
# messages/tests/fuzz_corpus/ so the regression test replays it forever.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
bash tools/bootstrap.sh deps
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DYARD_BUILD_FUZZERS=ON -DYARD_BUILD_TESTS=OFF -DYARD_ENABLE_CUDA=OFF -DCMAKE_CXX_FLAGS=-fsanitize=address,undefined
cmake --build build-fuzz --target codec_fuzz -j "$(nproc)"
work=$(mktemp -d)
cp messages/tests/fuzz_corpus/* "$work/"
build-fuzz/bin/codec_fuzz -max_total_time="$secs" -max_len=65536 -artifact_prefix=build-fuzz/ "$work"
echo "fuzz: ran ${secs}s, corpus $(ls "$work" | wc -l) inputs, no crash"
