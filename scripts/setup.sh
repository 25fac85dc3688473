#!/usr/bin/env bash
# Sets up a machine to build, run and test Wharf. Idempotent: run it as often as you like.
#  1. (as root) installs the Debian packages the runtime and the tests use, when any is missing;
#  2. installs the npm dependencies (`npm ci` from package-lock.json; this brings Node 24 as the npm
#     package `node`, which the scripts use instead of the machine's node);
#  3. builds (`npm run build` → dist/).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

# Debian packages: the reference registry, a static busybox (the base image), the OCI runtime and its
# monitor, OCI image tools used by the test fixtures, xattr/iptables/ip tools, debootstrap, htpasswd, jq, and
# docker.io: dockerd as the *reference* the comparison tests and benchmarks run beside wharfd (on private
# sockets and data roots; never a back end of Wharf); python3-docker (docker-py, an SDK client the e2e tests drive);
# git (git build contexts and `ADD <git URL>`), and openssh-client (ssh-agent, for the `wharf build --ssh` test);
# ceph-mon, ceph-osd and radosgw: the single-host Ceph RGW (S3) that scripts/ceph-rgw.sh starts for the S3 back end of
# `wharf registry serve` in tests and benches (~70 MB download, under a minute to install here); containerd for the
# interop tests (ctr); aardvark-dns: the name server of user-defined networks (engine/network/aardvark.ts; netavark
# comes with it and is no longer driven);
# docker-compose (1.29): the Compose e2e tests.
PKGS=(docker-registry busybox-static runc crun conmon skopeo umoci attr iptables iproute2 debootstrap apache2-utils jq docker.io
  python3-docker git openssh-client ceph-mon ceph-osd radosgw containerd netavark aardvark-dns docker-compose)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${missing[*]} (run this script as root to install them)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: Debian packages present"
fi

# npm dependencies. Reinstall only when package-lock.json changed since the last install (or when
# node_modules is incomplete).
stamp=node_modules/.wharf-setup-stamp
want="$(sha256sum package-lock.json 2>/dev/null | cut -d' ' -f1 || true)"
if [[ -x node_modules/node/bin/node && -x node_modules/.bin/tsc && -f $stamp && "$(cat "$stamp")" == "$want" && -n $want ]]; then
  echo "setup: node_modules up to date"
else
  if [[ -f package-lock.json ]]; then
    echo "setup: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
  else
    echo "setup: npm install (no package-lock.json)"
    npm install --no-audit --no-fund --loglevel=error
    want="$(sha256sum package-lock.json | cut -d' ' -f1)"
  fi
  echo "$want" > "$stamp"
fi
node_modules/node/bin/node --version >/dev/null || { echo "setup: Node 24 (npm package node) missing" >&2; exit 1; }

echo "setup: npm run build"
npm run build --silent
echo "setup: done (node $(node_modules/node/bin/node --version))"
