#!/usr/bin/env bash
# tests/package_test.sh BUILD_DIR — builds the .deb with CPack from BUILD_DIR and checks
# it: the files and conffiles it carries, Depends filled from the binary's libraries,
# the packaged binary runs, the sample agent config validates, and the systemd units
# pass `systemd-analyze verify` with no complaint (skipped where systemd-analyze is
# absent). Exit 0 = pass.
set -euo pipefail
build=$1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "package_test: $*" >&2; exit 1; }

(cd "$build" && cpack -G DEB -B "$out/pkg" > "$out/cpack.log" 2>&1) || { cat "$out/cpack.log" >&2; fail "cpack failed"; }
deb=$(ls "$out"/pkg/*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || fail "no .deb produced"
dpkg-deb -c "$deb" | awk '{print $6}' > "$out/contents"
for f in ./usr/bin/yard ./etc/switchyard/agent.toml ./etc/switchyard/switchyard.env \
         ./usr/lib/systemd/system/switchyard-agent.service ./usr/lib/systemd/system/switchyard-frontend.service \
         ./usr/lib/systemd/system/switchyard-router.service ./usr/share/switchyard/profiles/default.json \
         ./usr/share/doc/switchyard/README.md ./usr/share/doc/switchyard/hardened/nats-server.conf; do
  grep -qx "$f" "$out/contents" || fail "missing $f"
done
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libcaf-core libnats libucx; do
  [[ "$depends" == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
dpkg-deb -e "$deb" "$out/control"
grep -qx /etc/switchyard/agent.toml "$out/control/conffiles" || fail "agent.toml is not a conffile"
dpkg-deb -x "$deb" "$out/root"
"$out/root/usr/bin/yard" --help | grep -q "tree" || fail "the packaged yard does not run"
"$out/root/usr/bin/yard" agent --config "$out/root/etc/switchyard/agent.toml" --check > /dev/null || fail "sample agent.toml is invalid"

if command -v systemd-analyze > /dev/null; then
  mkdir "$out/units"
  for u in "$out"/root/usr/lib/systemd/system/*.service; do
    # Point ExecStart at the unpacked binary: verify checks that it exists.
    sed "s|/usr/bin/yard|$out/root/usr/bin/yard|" "$u" > "$out/units/$(basename "$u")"
  done
  (cd "$out/units" && systemd-analyze verify --man=no ./*.service) > "$out/verify.log" 2>&1 || { cat "$out/verify.log" >&2; fail "systemd-analyze verify failed"; }
  # verify exits 0 on ignored keys and bad values: any line about our units is a failure.
  if grep -q "switchyard-" "$out/verify.log"; then cat "$out/verify.log" >&2; fail "systemd-analyze verify complained"; fi
else
  echo "package_test: systemd-analyze absent: units not verified"
fi
echo "package_test: ok ($(basename "$deb"), $(du -h "$deb" | cut -f1))"
