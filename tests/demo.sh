#!/bin/sh
# The main job, end to end on one machine: start the bundled mock MAAS with an example machine
# (tests/fixtures/demo-machines.yaml) and boot wisp against it in a throwaway root — applied for
# Linux (as root: the accounts are really created in that root), and the same documents planned
# for NetBSD with --dry-run — then show what MAAS saw: the machine Deployed and its events.
#
#   sh tests/demo.sh            # everything in a temporary directory, removed afterwards
#   KEEP=1 sh tests/demo.sh     # keep it, to look at the root and the mock's state
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# The first build takes a few minutes: say so, and let cargo show its progress.
echo "demo: building wisp and mock-maas (first time: a few minutes)…"
cargo build -p wisp -p mock-maas
bin="$top/target/debug"

work=$(mktemp -d "${TMPDIR:-/tmp}/wisp-demo.XXXXXX")
mock_pid=
cleanup() {
    [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then
        echo "demo: kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT INT TERM

"$bin/mock-maas" --machines tests/fixtures/demo-machines.yaml --listen 127.0.0.1:0 \
    --write-wisp-config "$work/wisp.yaml" --state-file "$work/maas-state.json" \
    >"$work/mock-maas.log" 2>&1 &
mock_pid=$!
tries=0
until [ -s "$work/wisp.yaml" ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ] || ! kill -0 "$mock_pid" 2>/dev/null; then
        echo "demo: mock-maas did not start:" >&2
        cat "$work/mock-maas.log" >&2
        exit 1
    fi
    sleep 0.05
done
cat "$work/mock-maas.log"

# A throwaway Linux root: account files, sudoers, and a shell for runcmd.
root="$work/root"
mkdir -p "$root/etc/wisp" "$root/home" "$root/root" "$root/var/tmp"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
echo 'root:*:19000:0:99999:7:::' >"$root/etc/shadow"
echo 'root:*::' >"$root/etc/gshadow"
chmod 600 "$root/etc/shadow" "$root/etc/gshadow"
printf 'root ALL=(ALL) ALL\n@includedir /etc/sudoers.d\n' >"$root/etc/sudoers"
for f in /bin/sh $(ldd /bin/sh 2>/dev/null | awk '/\//{print $(NF-1)}'); do
    mkdir -p "$root$(dirname "$f")"
    cp -L "$f" "$root$f"
done
cp "$work/wisp.yaml" "$root/etc/wisp/wisp.yaml"

echo
if [ "$(id -u)" = 0 ]; then
    echo "\$ wisp --platform linux --root $root init"
    "$bin/wisp" --platform linux --root "$root" init || true
    echo
    echo "\$ wisp --root $root status --long"
    "$bin/wisp" --root "$root" status --long || true
    echo
    echo "In the root: $(grep -c . "$root/etc/passwd") accounts; $(cat "$root/var/tmp/wisp-was-here" 2>/dev/null)"
    # The same documents, planned for NetBSD.
    bsd="$work/netbsd-root"
    mkdir -p "$bsd/etc"
    echo 'root:*:0:0::/root:/bin/sh' >"$bsd/etc/passwd"
    echo 'wheel:*:0:root' >"$bsd/etc/group"
    "$bin/wisp" --root "$root" query --user-data >"$work/user-data"
    "$bin/wisp" --root "$root" query --vendor-data >"$work/vendor-data"
    echo
    echo "\$ wisp --platform netbsd --dry-run apply --user-data user-data --vendor-data vendor-data"
    "$bin/wisp" --platform netbsd --root "$bsd" --config "$work/wisp.yaml" --dry-run -q \
        apply --user-data "$work/user-data" --vendor-data "$work/vendor-data" || true
else
    echo "demo: not root, so accounts cannot be created; a dry run for NetBSD instead"
    echo "\$ wisp --platform netbsd --root $root --dry-run init"
    "$bin/wisp" --platform netbsd --root "$root" --dry-run init || true
fi

echo
echo "What MAAS saw:"
python3 - "$work/maas-state.json" <<'PY'
import json, sys
state = json.load(open(sys.argv[1]))
for m in state["machines"]:
    print(f"  machine {m['system_id']} ({m['hostname']}): {m['status']}")
    for e in m["events"]:
        print(f"    {e['event_type']:<6} {e['name']:<45} {e.get('result', '')}")
    if m.get("failure_reason"):
        print(f"    failure: {m['failure_reason']}")
gets = [r for r in state["requests"] if r["method"] == "GET"]
print(f"  {len(gets)} metadata GETs, {len(state['requests']) - len(gets)} status POSTs")
PY
