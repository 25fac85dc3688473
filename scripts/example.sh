#!/usr/bin/env bash
# Wharf's main job, end to end, on a private daemon (nothing touches /var/lib/wharf or /run/wharf):
#   setup → wharfd on a private socket and data root → bootstrap the busybox image from the host's static
#   busybox → a local docker-registry → push and pull through it → build an image FROM it and run it → the
#   tutorial's web server (run -d -p, exec, diff, commit). Every command is printed before it runs. Needs root.
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
    # containers outlive the daemon by design: remove this example's before stopping it
    bin/wharf ps -aq 2>/dev/null | xargs -r bin/wharf rm -f >/dev/null 2>&1
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
run bin/wharf image bootstrap busybox
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

say "tag, push and pull through the registry"
run bin/wharf tag busybox "$REG/library/busybox:latest"
run bin/wharf push "$REG/library/busybox:latest"
run bin/wharf rmi "$REG/library/busybox:latest"
run bin/wharf pull "$REG/library/busybox:latest"
run bin/wharf pull "$REG/library/busybox:latest"
run bin/wharf images
run bin/wharf images --digests
run bin/wharf history "$REG/library/busybox:latest"
run bin/wharf system df

say "build an image FROM the registry's busybox and run it"
mkdir -p "$W/app"
cat >"$W/app/Dockerfile" <<EOF
FROM $REG/library/busybox:latest
WORKDIR /srv
COPY index.html .
RUN echo "built on \$(date -u +%F)" > built.txt
EXPOSE 80
CMD ["httpd", "-f", "-p", "80", "-h", "/srv"]
EOF
echo '<h1>hello from wharf</h1>' >"$W/app/index.html"
run cat "$W/app/Dockerfile"
run bin/wharf build -t example/web:v1 "$W/app"
run bin/wharf run --rm example/web:v1 cat /srv/index.html /srv/built.txt
run bin/wharf history example/web:v1

say "the tutorial's web server: run -d -p, exec, diff, commit"
HPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
get() { python3 -c "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode(), end='')" "$1"; }
run bin/wharf run -d --name webserver -p "127.0.0.1:$HPORT:80" example/web:v1
for _ in $(seq 50); do get "http://127.0.0.1:$HPORT/" >/dev/null 2>&1 && break; sleep 0.1; done
run get "http://127.0.0.1:$HPORT/"
run bin/wharf exec webserver sh -c 'echo "<h1>changed inside the container</h1>" > /srv/index.html'
run get "http://127.0.0.1:$HPORT/"
run bin/wharf diff webserver
run bin/wharf commit --author "Wharf Example" --message "changed the page" webserver example/web:v2
run bin/wharf ps
run bin/wharf rm -f webserver
run bin/wharf run --rm example/web:v2 cat /srv/index.html
run bin/wharf history example/web:v2
run bin/wharf images

say "done"
