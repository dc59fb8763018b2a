#!/bin/sh
# Packer shell provisioner: install wisp into the image being built and leave it clean for
# capture. Upload a release archive first (file provisioner), then run this as root:
#
#   provisioner "file"  { source = "dist/wisp-0.1.0-x86_64-unknown-openbsd.tar.xz"
#                         destination = "/tmp/wisp.tar.xz" }
#   provisioner "shell" { script = "image-hooks/packer/provision.sh"
#                         environment_vars = ["WISP_ARCHIVE=/tmp/wisp.tar.xz"] }
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
xz -dc "$archive" | (cd "$work" && tar -xf -)
pkg=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)
[ -x "$pkg/sbin/wisp" ] || { echo "provision.sh: no sbin/wisp in $archive" >&2; exit 1; }

install -d -m 0755 "$root/usr/local/sbin" "$root/usr/local/man/man8" "$root/usr/local/man/man5" "$root/etc/wisp"
install -m 0555 "$pkg/sbin/wisp" "$root/usr/local/sbin/wisp"
install -m 0444 "$pkg/man/man8/wisp.8" "$root/usr/local/man/man8/wisp.8"
install -m 0444 "$pkg/man/man5/wisp.yaml.5" "$root/usr/local/man/man5/wisp.yaml.5"
[ -e "$root/etc/wisp/wisp.yaml" ] || install -m 0644 "$pkg/etc/wisp/wisp.yaml" "$root/etc/wisp/wisp.yaml"
case $os in
freebsd) rcdir=$root/usr/local/etc/rc.d ;;
*) rcdir=$root/etc/rc.d ;;
esac
install -d -m 0755 "$rcdir"
for s in "$pkg"/rc.d/*; do
    install -m 0555 "$s" "$rcdir/"
done
case $os in
netbsd) grep -qx 'wisp=YES' "$root/etc/rc.conf" 2>/dev/null || echo 'wisp=YES' >>"$root/etc/rc.conf" ;;
freebsd)
    install -d -m 0755 "$root/etc/rc.conf.d"
    echo 'wisp_enable="YES"' >"$root/etc/rc.conf.d/wisp"
    ;;
openbsd)
    if [ "$root" = / ]; then
        rcctl enable wisp
    else
        grep -q '^pkg_scripts=.*wisp' "$root/etc/rc.conf.local" 2>/dev/null ||
            echo 'pkg_scripts=wisp' >>"$root/etc/rc.conf.local"
    fi
    ;;
esac
# Nothing of the build machine's boot may stay in the image.
"$root/usr/local/sbin/wisp" --root "$root" clean --logs --seed
echo "provision.sh: wisp installed and clean"
