#!/usr/bin/env bash
# Builds a real OpenTelemetry Collector with exactly the core components config.yaml uses
# (otelcol-powerprint/main.go: otlp receiver, memory_limiter and batch processors, otlphttp
# exporter), from Debian's packaged sources: golang-opentelemetry-collector-dev (sid) and its
# golang-*-dev dependencies plus Debian's Go, fetched with a private APT state and unpacked with
# `dpkg -x` (nothing installed system-wide), compiled in GOPATH mode. ~300 MB of packages; the
# first build takes minutes (GOCACHE is kept for the next).
#
# Output: $POWERPRINT_OTELCOL_DIR/otelcol-powerprint (default <repo>/.cache/otelcol). Idempotent.
# Env: DEBIAN_MIRROR (default: the configured Debian mirror), DEBIAN_SUITE (default sid).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="${POWERPRINT_OTELCOL_DIR:-$repo_root/.cache/otelcol}"
suite="${DEBIAN_SUITE:-sid}"
if [[ -x "$dest/otelcol-powerprint" ]]; then
  echo "build-otelcol: already built: $dest/otelcol-powerprint"
  exit 0
fi
mirror="${DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]] && compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
  mirror="$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{for (i = 2; i <= NF; i++) print $i}' | grep -E '/debian/?$' | head -n1 || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"
work="$dest/work"
mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/debs" "$work/root"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$work/sources.list"
: >"$work/status"
apt_opts=(
  -o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=-"
  -o "Dir::State::Lists=$work/lists" -o "Dir::State::Status=$work/status"
  -o "Dir::Cache=$work/cache" -o "Dir::Cache::Archives=$work/archives"
  -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root" -o "Acquire::Languages=none"
)
echo "build-otelcol: fetching golang-opentelemetry-collector-dev, its Go dependencies and golang-go from $mirror $suite"
apt-get "${apt_opts[@]}" -qq update
mapfile -t packages < <(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
  --no-breaks --no-replaces --no-enhances golang-opentelemetry-collector-dev golang-go | grep -E '^golang-' | sort -u)
(cd "$work/debs" && apt-get "${apt_opts[@]}" -qq download "${packages[@]}")
for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$work/root"; done
goroot="$(ls -d "$work"/root/usr/lib/go-1.* | sort -V | tail -n1)"
src="$work/gopath/src/powerprint.local/otelcol-powerprint"
mkdir -p "$src"
cp "$repo_root/deploy/otel-collector/otelcol-powerprint/main.go" "$src/main.go"
echo "build-otelcol: compiling with $("$goroot/bin/go" version | awk '{print $3}') (GOPATH mode)"
(cd "$src" && GOROOT="$goroot" GOPATH="$work/gopath:$work/root/usr/share/gocode" GO111MODULE=off \
  GOCACHE="$dest/gocache" GOFLAGS= GOTOOLCHAIN=local CGO_ENABLED=0 "$goroot/bin/go" build -o "$dest/otelcol-powerprint.tmp" .)
mv "$dest/otelcol-powerprint.tmp" "$dest/otelcol-powerprint"
dpkg-deb -f "$work"/debs/golang-opentelemetry-collector-dev_*.deb Package Version | paste -sd' ' >"$dest/VERSION"
rm -rf "$work"
echo "build-otelcol: built $dest/otelcol-powerprint ($(cat "$dest/VERSION"))"
