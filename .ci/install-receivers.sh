#!/usr/bin/env bash
# Downloads and unpacks the real metric receivers the exporter tests talk to:
#   VictoriaMetrics single-node (OTLP protobuf receiver + PromQL API) and Prometheus (scraper).
# Source: Debian packages `victoria-metrics` and `prometheus` from trixie (bookworm's are too old:
# bookworm's victoria-metrics has no /opentelemetry endpoint). Nothing is installed system-wide:
# the .debs are fetched with a private APT state and unpacked with `dpkg -x` into
# .cache/receivers/ (gitignored). Idempotent: exits at once when both binaries are present.
# Needs only the Debian archive (the mirror configured in /etc/apt/sources.list.d) and
# /usr/share/keyrings/debian-archive-keyring.gpg.
#
# Env: POWERPRINT_RECEIVERS_DIR (default <repo>/.cache/receivers), DEBIAN_MIRROR (default: the
# Debian archive this machine's own apt sources name, deb822 /etc/apt/sources.list.d/*.sources or
# one-line sources.list(.d/*.list); no host is written here, so the script fails with one clear
# line when the machine has none), DEBIAN_SUITE (default trixie).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${POWERPRINT_RECEIVERS_DIR:-$repo_root/.cache/receivers}"
suite="${DEBIAN_SUITE:-trixie}"
vm_bin="$dest/root/usr/bin/victoria-metrics"
prom_bin="$dest/root/usr/bin/prometheus"

if [[ -x "$vm_bin" && -x "$prom_bin" ]]; then
  echo "install-receivers: already present in $dest"
  exit 0
fi

# APT configuration folder (tests point it at a fixture).
apt_etc="${POWERPRINT_APT_ETC:-/etc/apt}"

find_mirror() {
  local uri=""
  local -a deb822=() oneline=()
  shopt -s nullglob
  deb822=("$apt_etc"/sources.list.d/*.sources)
  oneline=("$apt_etc"/sources.list "$apt_etc"/sources.list.d/*.list)
  shopt -u nullglob
  if ((${#deb822[@]} > 0)); then
    # deb822: first URIs value whose path ends in /debian (not -security, not third-party).
    uri="$(grep -h '^URIs:' "${deb822[@]}" 2>/dev/null \
      | awk '{for (i = 2; i <= NF; i++) print $i}' | grep -E '^https?://.*/debian/?$' | head -n1 || true)"
  fi
  if [[ -z "$uri" ]]; then
    local f
    for f in "${oneline[@]}"; do
      [[ -f "$f" ]] || continue
      # "deb [options] URI suite ...": the first http(s) field ending in /debian.
      uri="$(grep -E '^[[:space:]]*deb[[:space:]]' "$f" \
        | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; break}}' \
        | grep -E '/debian/?$' | head -n1 || true)"
      [[ -n "$uri" ]] && break
    done
  fi
  echo "$uri"
}

mirror="${DEBIAN_MIRROR:-$(find_mirror)}"
if [[ -z "$mirror" ]]; then
  echo "install-receivers: no Debian archive found in this machine's apt sources ($apt_etc/sources.list.d/*.sources, $apt_etc/sources.list): add one, or set DEBIAN_MIRROR=<archive URL ending in /debian>" >&2
  exit 1
fi
keyring="/usr/share/keyrings/debian-archive-keyring.gpg"
if [[ ! -f "$keyring" ]]; then
  echo "install-receivers: $keyring is missing (install the debian-archive-keyring package)" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/etc/preferences.d" "$work/etc/apt.conf.d"
echo "deb [signed-by=$keyring] $mirror $suite main" >"$work/sources.list"
: >"$work/status"

apt_opts=(
  -o "Dir::Etc::SourceList=$work/sources.list"
  -o "Dir::Etc::SourceParts=-"
  -o "Dir::Etc::Preferences=$work/etc/preferences"
  -o "Dir::Etc::PreferencesParts=$work/etc/preferences.d"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::State::Status=$work/status"
  -o "Dir::Cache=$work/cache"
  -o "Dir::Cache::Archives=$work/archives"
  -o "APT::Architecture=$(dpkg --print-architecture)"
  -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=root"
  -o "Acquire::Languages=none"
)

echo "install-receivers: fetching victoria-metrics and prometheus from $mirror $suite"
apt-get "${apt_opts[@]}" -qq update
mkdir -p "$work/debs"
(cd "$work/debs" && apt-get "${apt_opts[@]}" -qq download victoria-metrics prometheus)

rm -rf "$dest.tmp"
mkdir -p "$dest.tmp/root"
for deb in "$work"/debs/*.deb; do
  dpkg -x "$deb" "$dest.tmp/root"
  dpkg-deb -f "$deb" Package Version | paste -sd' ' >>"$dest.tmp/VERSIONS"
done
# Atomic replace so a half-unpacked tree never looks complete.
rm -rf "$dest"
mv "$dest.tmp" "$dest"
sed "s/^/install-receivers: /" "$dest/VERSIONS"
echo "install-receivers: installed into $dest"
