#!/usr/bin/env bash
# Builds deploy/docker/Dockerfile with buildah, daemonless and registry-less, then runs
# `powerprint --version` in the image. No image registry is reachable here, so the Dockerfile's
# NODE_IMAGE is a local base made `FROM scratch` out of this machine's own Node.js: the node
# binary and the shared libraries ldd names (and those of the native build tools' bindings), npm, /bin/sh, env and ln (what npm's lifecycle scripts
# and the Dockerfile's RUN steps call), the CA bundle and npm's cafile setting. npm ci inside the
# build reaches the npm registry like the host does.
#
# Usage: test/deploy/build-image.sh TAG   (prints the version on stdout's last line)
# Env: BUILDAH_STORAGE (default: a temp dir, removed at exit). Needs root, buildah, vfs.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tag="${1:?usage: build-image.sh TAG}"
storage="${BUILDAH_STORAGE:-$(mktemp -d /tmp/powerprint-buildah.XXXXXX)}"
run_root="$(mktemp -d /tmp/powerprint-buildah-run.XXXXXX)"
base="localhost/powerprint-test-node:20"
bh=(buildah --root "$storage" --runroot "$run_root" --storage-driver vfs)
ctr=""
cleanup() {
  [[ -n "$ctr" ]] && "${bh[@]}" rm "$ctr" >/dev/null 2>&1 || true
  "${bh[@]}" rm --all >/dev/null 2>&1 || true
  # vfs layers are plain directories; the temp storage goes entirely.
  [[ -z "${BUILDAH_STORAGE:-}" ]] && rm -rf "$storage"
  rm -rf "$run_root"
}
trap cleanup EXIT

node_bin="$(readlink -f "$(command -v node)")"
npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"

ctr="$("${bh[@]}" from scratch)"
mnt="$("${bh[@]}" mount "$ctr")"
copy_with_libs() { # binary -> its path in the image, and every library ldd names at its own path
  local src="$1" dest="$2"
  install -D -m 0755 "$src" "$mnt$dest"
  ldd "$src" | awk '/=> \//{print $3} /^\t\/.*ld-linux/{print $1}' | while read -r lib; do
    [[ -e "$mnt$lib" ]] || install -D -m 0755 "$(readlink -f "$lib")" "$mnt$lib"
  done
}
copy_with_libs "$node_bin" /usr/local/bin/node
copy_with_libs "$(readlink -f /bin/sh)" /bin/sh
copy_with_libs "$(readlink -f "$(command -v env)")" /usr/bin/env
copy_with_libs "$(readlink -f "$(command -v ln)")" /bin/ln
# The libraries of the build's native npm binaries (rolldown's binding: librt, libdl, libpthread),
# which a real node:20-bookworm-slim base has with its glibc; only their libraries are copied.
for native in "$repo_root"/node_modules/@rolldown/binding-*/*.node; do
  [[ -e "$native" ]] || continue
  ldd "$native" | awk '/=> \//{print $3}' | while read -r lib; do
    [[ -e "$mnt$lib" ]] || install -D -m 0755 "$(readlink -f "$lib")" "$mnt$lib"
  done
done
mkdir -p "$mnt/usr/local/lib/node_modules" "$mnt/tmp" "$mnt/etc/ssl/certs" "$mnt/usr/local/etc" "$mnt/root"
chmod 1777 "$mnt/tmp"
cp -a "$npm_dir" "$mnt/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
cp /etc/ssl/certs/ca-certificates.crt "$mnt/etc/ssl/certs/ca-certificates.crt"
echo "cafile=/etc/ssl/certs/ca-certificates.crt" >"$mnt/usr/local/etc/npmrc"
printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh\n' >"$mnt/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$mnt/etc/group"
"${bh[@]}" umount "$ctr" >/dev/null
"${bh[@]}" config --env PATH=/usr/local/bin:/usr/bin:/bin --env HOME=/root --env NPM_CONFIG_UPDATE_NOTIFIER=false "$ctr"
"${bh[@]}" commit --quiet "$ctr" "$base" >/dev/null
"${bh[@]}" rm "$ctr" >/dev/null
ctr=""

"${bh[@]}" bud --quiet --isolation chroot --pull-never --layers=false \
  --build-arg NODE_IMAGE="$base" -f "$repo_root/deploy/docker/Dockerfile" -t "$tag" "$repo_root" >&2
# A container of the final image: print its ENTRYPOINT and USER, then run `powerprint --version` as
# that user (buildah run runs the given command, found on the image's PATH, as the image's USER).
ctr="$("${bh[@]}" from --pull-never "$tag")"
"${bh[@]}" inspect --format 'entrypoint={{.OCIv1.Config.Entrypoint}} user={{.OCIv1.Config.User}}{{println}}' "$ctr"
"${bh[@]}" run --isolation chroot "$ctr" -- powerprint --version
