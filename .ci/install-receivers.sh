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

# shellcheck source=.ci/deb-fetch.sh
source "$repo_root/.ci/deb-fetch.sh"
deb_fetch install-receivers "$suite" "$dest" "victoria-metrics and prometheus" victoria-metrics prometheus
sed "s/^/install-receivers: /" "$dest/VERSIONS"
echo "install-receivers: installed into $dest"
