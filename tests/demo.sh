#!/bin/sh
# The main job, end to end on one machine: start the bundled mock MAAS with an example machine
# (tests/fixtures/demo-machines.yaml), run wisp against it in a throwaway root, then show what
# MAAS saw: the machine's state and the requests and events it received.
#
#   sh tests/demo.sh            # everything in a temporary directory, removed afterwards
#   KEEP=1 sh tests/demo.sh     # keep it, to look at the root and the mock's state
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
cargo build --quiet -p wisp -p mock-maas
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

mkdir -p "$work/root"
echo
echo "\$ wisp --config $work/wisp.yaml --root $work/root fetch"
"$bin/wisp" --config "$work/wisp.yaml" --root "$work/root" fetch
echo
echo "\$ wisp --root $work/root query v1.local_hostname"
"$bin/wisp" --root "$work/root" query v1.local_hostname

echo
echo "What MAAS saw:"
python3 - "$work/maas-state.json" <<'PY'
import json, sys
state = json.load(open(sys.argv[1]))
for m in state["machines"]:
    print(f"  machine {m['system_id']} ({m['hostname']}): {m['status']}")
    for e in m["events"]:
        print(f"    event {e['event_type']:<6} {e['name']:<40} {e.get('result', '')}")
    if m.get("failure_reason"):
        print(f"    failure: {m['failure_reason']}")
for r in state["requests"]:
    print(f"  {r['method']:<4} {r['path']} -> {r['status']}")
PY
