#!/bin/sh
# Packer shell provisioner: install wisp into the image being built and leave it clean for
# capture. Upload a release archive first (file provisioner), then run this as root:
#
#   provisioner "file"  { source = "dist/wisp-0.1.0-x86_64-unknown-netbsd.tar.xz"
#                         destination = "/tmp/wisp.tar.xz" }
#   provisioner "shell" { script = "image-hooks/packer/provision.sh"
#                         environment_vars = ["WISP_ARCHIVE=/tmp/wisp.tar.xz"] }
#
# cross/build writes OpenBSD's archives gzipped (wisp-VERSION-x86_64-unknown-openbsd-RELEASE.tgz):
# OpenBSD's base has gzip, not xz. The archive's first bytes say which it is, whatever its name.
#
# WISP_ROOT (default /) installs into another tree instead, for tests.
set -eu

archive=${WISP_ARCHIVE:-/tmp/wisp.tar.xz}
root=${WISP_ROOT:-/}
os=$(uname -s | tr 'A-Z' 'a-z')
os=${WISP_OS:-$os}
case $os in
netbsd | freebsd | openbsd) ;;
*) echo "provision.sh: $os is not NetBSD, FreeBSD or OpenBSD" >&2; exit 1 ;;
esac
[ -f "$archive" ] || { echo "provision.sh: $archive is missing (upload it first)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/wisp-provision.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
magic=$(od -An -tx1 -N2 "$archive" | tr -d ' \n')
case $magic in
1f8b) unpack=gzip ;;
fd37) unpack=xz ;;
*) echo "provision.sh: $archive is neither gzip nor xz (cross/build's .tgz or .tar.xz)" >&2; exit 1 ;;
esac
command -v "$unpack" >/dev/null 2>&1 ||
    { echo "provision.sh: $archive needs $unpack, which this system lacks (OpenBSD: use the .tgz archive)" >&2; exit 1; }
"$unpack" -dc "$archive" | (cd "$work" && tar -xf -)
pkg=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)
[ -x "$pkg/sbin/wisp" ] || { echo "provision.sh: no sbin/wisp in $archive" >&2; exit 1; }
[ -f "$pkg/image-hooks/install" ] || { echo "provision.sh: no image-hooks/install in $archive (made by an older cross/build?)" >&2; exit 1; }

# The archive carries packaging/manifest and image-hooks/install: the same files, modes and
# enabling as an image built from the repository.
sh "$pkg/image-hooks/install" --os "$os" --binary "$pkg/sbin/wisp" "$root"
# Nothing of the build machine's boot may stay in the image.
"$root/usr/local/sbin/wisp" --root "$root" clean --logs --seed
echo "provision.sh: wisp installed and clean"
