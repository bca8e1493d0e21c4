# Sourced by .ci/install-receivers.sh and .ci/install-llama.sh: downloads Debian packages from a
# chosen suite with a private APT state (nothing installed system-wide, no system apt state
# touched) and unpacks them with `dpkg -x` into a folder, atomically (a half-unpacked tree never
# looks complete). Needs only the Debian archive this machine's own apt sources name (deb822
# <etc>/sources.list.d/*.sources or one-line sources.list(.d/*.list); DEBIAN_MIRROR overrides; no
# host is written here) and /usr/share/keyrings/debian-archive-keyring.gpg.
#
#   deb_fetch TAG SUITE DEST "WHAT" PACKAGE...
# TAG prefixes every line; WHAT names the packages in the "fetching" line. DEST gets root/ (the
# unpacked files) and VERSIONS. POWERPRINT_APT_ETC points at another apt configuration folder
# (tests). Returns non-zero with one clear line on stderr when the archive or a package cannot be had.

deb_find_mirror() {
  local apt_etc="$1" uri=""
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

deb_fetch() {
  local tag="$1" suite="$2" dest="$3" what="$4"
  shift 4
  local apt_etc="${POWERPRINT_APT_ETC:-/etc/apt}"
  local mirror="${DEBIAN_MIRROR:-$(deb_find_mirror "$apt_etc")}"
  if [[ -z "$mirror" ]]; then
    echo "$tag: no Debian archive found in this machine's apt sources ($apt_etc/sources.list.d/*.sources, $apt_etc/sources.list): add one, or set DEBIAN_MIRROR=<archive URL ending in /debian>" >&2
    return 1
  fi
  local keyring="/usr/share/keyrings/debian-archive-keyring.gpg"
  if [[ ! -f "$keyring" ]]; then
    echo "$tag: $keyring is missing (install the debian-archive-keyring package)" >&2
    return 1
  fi
  local work
  work="$(mktemp -d)"
  mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/etc/preferences.d" "$work/debs"
  echo "deb [signed-by=$keyring] $mirror $suite main" >"$work/sources.list"
  : >"$work/status"
  local -a apt_opts=(
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
  echo "$tag: fetching $what from $mirror $suite"
  if ! apt-get "${apt_opts[@]}" -qq update || ! (cd "$work/debs" && apt-get "${apt_opts[@]}" -qq download "$@"); then
    echo "$tag: could not download $* from $mirror $suite" >&2
    rm -rf "$work"
    return 1
  fi
  rm -rf "$dest.tmp"
  mkdir -p "$dest.tmp/root"
  local deb
  for deb in "$work"/debs/*.deb; do
    dpkg -x "$deb" "$dest.tmp/root"
    dpkg-deb -f "$deb" Package Version | paste -sd' ' >>"$dest.tmp/VERSIONS"
  done
  rm -rf "$work"
  rm -rf "$dest"
  mv "$dest.tmp" "$dest"
}
