#!/usr/bin/env bash
# Wharf's main job, end to end, on a private daemon (nothing touches /var/lib/wharf or /run/wharf):
#   setup → wharfd on a private socket and data root → bootstrap the busybox image from the host's static
#   busybox → a local docker-registry → tag/push (or seed) and pull through it → images → run (when
#   containers are implemented). Every command is printed before it runs. Needs root (mounts).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
ROOT=$PWD
NODE=$ROOT/node_modules/node/bin/node

say() { printf '\n== %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }

say "setup (Debian packages, npm ci, build)"
bash scripts/setup.sh

W=$(mktemp -d /tmp/wharf-example.XXXXXX)
SOCK=$W/wharf.sock
export DOCKER_HOST=unix://$SOCK   # the wharf CLI (and the docker CLI) talk to this daemon
WHARFD_PID=
REG_PID=
cleanup() {
  set +e
  [[ -n $REG_PID ]] && kill "$REG_PID" 2>/dev/null
  if [[ -n $WHARFD_PID ]]; then
    kill "$WHARFD_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$WHARFD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$WHARFD_PID" 2>/dev/null
  fi
  grep -o " $W[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT

say "start wharfd on $SOCK (data root $W/data; log $W/wharfd.log)"
printf '+ %s\n' "bin/wharfd -H unix://$SOCK --data-root $W/data --exec-root $W/exec --pidfile $W/wharfd.pid &"
bin/wharfd -H "unix://$SOCK" --data-root "$W/data" --exec-root "$W/exec" --pidfile "$W/wharfd.pid" >"$W/wharfd.log" 2>&1 &
WHARFD_PID=$!
"$NODE" -e '
  const http = require("node:http"); const sock = process.argv[1]; const end = Date.now() + 30000;
  (function ping() {
    const req = http.get({ socketPath: sock, path: "/_ping" }, (r) => { r.resume(); r.statusCode === 200 ? process.exit(0) : retry(); });
    req.on("error", retry);
  })();
  function retry() { if (Date.now() > end) { console.error("wharfd did not answer on " + sock); process.exit(1); } setTimeout(() => { const r = http.get({ socketPath: sock, path: "/_ping" }, (x) => { x.resume(); x.statusCode === 200 ? process.exit(0) : retry(); }); r.on("error", retry); }, 100); }
' "$SOCK" || { cat "$W/wharfd.log"; exit 1; }
run bin/wharf version

say "bootstrap busybox (an image made from the host's static busybox, no Docker Hub needed)"
if bin/wharf image bootstrap --help >/dev/null 2>&1; then
  run bin/wharf image bootstrap busybox
else
  printf '+ %s\n' "POST /images/bootstrap?name=busybox"
  "$NODE" -e '
    const http = require("node:http");
    const req = http.request({ socketPath: process.argv[1], method: "POST", path: "/v1.41/images/bootstrap?name=busybox" }, (r) => {
      r.pipe(process.stdout); r.on("end", () => process.exit(r.statusCode === 200 ? 0 : 1));
    });
    req.on("error", (e) => { console.error(e.message); process.exit(1); }); req.end();
  ' "$SOCK"
  echo
fi
run bin/wharf images

say "start a local registry (Debian's docker-registry) on 127.0.0.1"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
mkdir -p "$W/registry"
cat >"$W/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/registry/storage
  delete:
    enabled: true
http:
  addr: $REG
EOF
docker-registry serve "$W/registry/config.yml" >"$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do
  python3 -c "import urllib.request,sys; urllib.request.urlopen('http://$REG/v2/', timeout=1)" 2>/dev/null && break
  sleep 0.1
done
echo "registry at http://$REG"

say "tag, push (or seed the registry) and pull through the registry"
run bin/wharf tag busybox "$REG/library/busybox:latest"
if bin/wharf push --help >/dev/null 2>&1; then
  run bin/wharf push "$REG/library/busybox:latest"
else
  echo "(wharf push is not available here: seeding the registry with the test fixture's OCI busybox via skopeo)"
  run "$NODE" -e 'import("./dist/test/support/oci-images.js").then((m) => m.pushBusybox(process.argv[1], "library/busybox:latest"))' "$REG"
fi
run bin/wharf rmi "$REG/library/busybox:latest"
run bin/wharf pull "$REG/library/busybox:latest"
run bin/wharf pull "$REG/library/busybox:latest"
run bin/wharf images
run bin/wharf images --digests
run bin/wharf history "$REG/library/busybox:latest"
run bin/wharf system df

say "run a container"
if bin/wharf --help 2>&1 | grep -qE '^\s+run\b'; then
  run bin/wharf run --rm "$REG/library/busybox:latest" echo "hello from a wharf container"
else
  echo "(containers are not implemented in this build: skipping 'wharf run')"
fi

say "done"
