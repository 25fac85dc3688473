#!/usr/bin/env bash
# A single-host Ceph micro-cluster with a RADOS Gateway (S3) on loopback, for the S3 back end of
# `wharf registry serve` in tests and benches. One monitor, one OSD on memstore (RAM, no disk), no cephx
# inside the cluster, radosgw on 127.0.0.1:$WHARF_RGW_PORT with one S3 user.
#
#   scripts/ceph-rgw.sh start    # idempotent: starts what is not running, then prints the env (below)
#   scripts/ceph-rgw.sh env      # prints WHARF_S3_ENDPOINT=… AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… AWS_REGION=…
#   scripts/ceph-rgw.sh status   # exit 0 when radosgw answers
#   scripts/ceph-rgw.sh stop     # stops every daemon it started and removes its directory
#
# Needs Debian's ceph-mon, ceph-osd, radosgw (and ceph-mgr with WHARF_CEPH_MGR=1); `start` installs them when run as root and
# WHARF_CEPH_INSTALL=1. Exits 2 (with the reason on stderr) when the cluster cannot start here.
set -euo pipefail

DIR=${WHARF_CEPH_DIR:-/tmp/wharf-ceph}
MON_PORT=${WHARF_CEPH_MON_PORT:-16789}
RGW_PORT=${WHARF_RGW_PORT:-17480}
ACCESS_KEY=${WHARF_RGW_ACCESS_KEY:-WHARFTESTACCESSKEY01}
SECRET_KEY=${WHARF_RGW_SECRET_KEY:-wharf-test-secret-key-not-for-production}
CONF=$DIR/ceph.conf
CEPH=(ceph -c "$CONF" --connect-timeout 10)

# glibc malloc of the data path's daemons keeps freed buffers instead of giving them back to the kernel: each
# 4 MiB message buffer was a fresh mmap whose pages faulted in again (page faults were the biggest share of the
# store's CPU per byte in this VM).
MALLOC_TUNE=(env MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=134217728)

die() { echo "ceph-rgw: $*" >&2; exit 2; }

print_env() {
  echo "WHARF_S3_ENDPOINT=http://127.0.0.1:$RGW_PORT"
  echo "AWS_ACCESS_KEY_ID=$ACCESS_KEY"
  echo "AWS_SECRET_ACCESS_KEY=$SECRET_KEY"
  echo "AWS_REGION=us-east-1"
}

rgw_up() { curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$RGW_PORT/"; }

running() { # running NAME: the daemon's pid file names a live process
  local pf=$DIR/run/$1.pid
  [[ -f $pf ]] && kill -0 "$(cat "$pf")" 2>/dev/null
}

stop() {
  for n in client.rgw mgr.x osd.0 mon.a; do
    local pf=$DIR/run/$n.pid
    if [[ -f $pf ]]; then
      local pid; pid=$(cat "$pf")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  # Only a directory this script made (or an empty one) is removed.
  if [[ -f $DIR/ceph.conf || ( -d $DIR && -z $(ls -A "$DIR" 2>/dev/null) ) ]]; then rm -rf "$DIR"; fi
}

start() {
  if rgw_up && running client.rgw; then print_env; return 0; fi
  local missing=()
  for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph; do command -v "$b" >/dev/null || missing+=("$b"); done
  if ((${#missing[@]})); then
    if [[ ${WHARF_CEPH_INSTALL:-0} == 1 && $(id -u) -eq 0 ]]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ceph-mon ceph-osd ceph-mgr radosgw >/dev/null 2>&1 \
        || die "apt-get install ceph-mon ceph-osd ceph-mgr radosgw failed"
    else
      die "missing ${missing[*]} (apt-get install ceph-mon ceph-osd ceph-mgr radosgw)"
    fi
  fi
  # A half-started cluster from before is thrown away: starting afresh takes seconds. Again if a try fails (seen
  # here: the new OSD reached a monitor of the cluster just stopped, 'wrong fsid').
  # Under a heavy load (20-30 on two cores) it was seen in one start of two: the OSD's first monitor command
  # carried a zero fsid. Up to three tries.
  stop
  for try in 1 2; do
    if ( start_once ); then mark_owner; return 0; fi
    echo "ceph-rgw: start $try failed; starting afresh" >&2
    stop
  done
  start_once
  mark_owner
}

# Who started this cluster (WHARF_RGW_OWNER, e.g. a test run's ID): a test run stops only a cluster it started
# itself, never one that another run started while it was going.
mark_owner() { if [[ -n ${WHARF_RGW_OWNER:-} ]]; then printf '%s\n' "$WHARF_RGW_OWNER" >"$DIR/started-by"; fi; }

mon_port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$MON_PORT") 2>/dev/null; }

start_once() {
  for _ in $(seq 100); do mon_port_free && break; sleep 0.1; done
  mon_port_free || die "port $MON_PORT is in use (WHARF_CEPH_MON_PORT)"
  local fsid; fsid=$(cat /proc/sys/kernel/random/uuid)
  # Data directories named by the cluster's fsid: nothing a dying daemon of an earlier cluster writes can reach them.
  local data=$DIR/data-$fsid
  mkdir -p "$DIR/run" "$DIR/log" "$data/mon.a" "$data/osd.0" || die "cannot create $DIR"
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$MON_PORT
ms bind msgr2 = false
ms bind ipv4 = true
ms bind ipv6 = false
public addr = 127.0.0.1
public network = 127.0.0.0/8
cluster network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd crush chooseleaf type = 0
# The OSD sends no monitor command of its own at start (its device class, its CRUSH location): this script puts
# osd.0 in the CRUSH map before starting it. That first command failed in 4 of 7 cold starts at a load of 2.6-9.5
# ('mon_cmd_maybe_osd_create fail: wrong fsid', then 'init unable to update_crush_device_class': the OSD exits and
# the start is tried again from scratch, 5-12 s more; h-s3pull saw it carry a zero fsid); 0 of 7 without it.
osd class update on start = false
osd crush update on start = false
osd objectstore = memstore
memstore device bytes = ${WHARF_CEPH_MEM_BYTES:-2147483648}
osd max object name len = 460
osd max object namespace len = 64
# Throughput tuning of this one-host cluster (bench/README.md "registry on S3"): no data CRCs on loopback
# messages (TCP checksums them already; the CRC was ~15% of the store's CPU per byte), no in-memory debug logs.
ms crc data = false
debug ms = 0/0
debug osd = 0/0
debug rgw = 0/0
debug objecter = 0/0
debug rados = 0/0
debug monc = 0/0
debug auth = 0/0
debug finisher = 0/0
debug optracker = 0/0
debug throttle = 0/0
debug heartbeatmap = 0/0
debug perfcounter = 0/0
debug asok = 0/0
debug context = 0/0
debug objclass = 0/0
debug filestore = 0/0
debug journal = 0/0
debug bluestore = 0/0
debug memdb = 0/0
[mon.a]
mon data = $data/mon.a
[osd.0]
osd data = $data/osd.0
[mgr.x]
mgr data = $data/mgr.x
[client.rgw]
# tcp_nodelay: beast writes a response's headers and its body apart; with Nagle's algorithm on, the body waits for
# the client's (delayed, 40 ms) ACK of the headers on a kept-alive connection, so every GET with a body took ~45 ms
# against ~3 ms for a HEAD (a manifest GET through an S3 replica: ~110 ms of it). Ceph's docs recommend it for latency.
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw data = $data/rgw
rgw enable usage log = false
# Deleted objects' data goes back to the memstore within a minute (RGW's default waits two hours, and a few bench
# rounds of 200 MB filled the 2 GiB store: 'full status failsafe engaged').
rgw gc obj min wait = 30
rgw gc processor period = 30
# Measured and left at Ceph's defaults (h-rgw, bench/README.md "registry on S3"; 50 MiB GETs by curl on a presigned
# URL, 20 a round, values alternated; 200 MiB multipart PUTs, the store's CPU): rgw get obj window size 4/16/64 MiB,
# rgw get obj max req size 1/4/16 MiB, rgw put obj min window size 64 MiB, rgw thread pool size 4/16, ms async op
# threads 1, ms tcp rcvbuf 4 MiB, radosgw's malloc settings on the OSD too: no change beyond a run's noise (GET
# medians 35-48 ms, 2.4-2.9 s of store CPU per 200 MiB PUT). Worse: rgw max chunk size + rgw obj stripe size 16 MiB
# (GETs 71-86 ms, first byte 13-17 ms), one OSD op shard of one thread (55-83 ms). perf: a GET's store CPU is the
# kernel's loopback TCP copies and their softirq work (OSD -> radosgw -> client); a PUT's adds crc32c of the object
# data digest and a copy in the OSD's op threads: nothing a setting removes on one host.
EOF
  monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$MON_PORT]" "$DIR/monmap" >/dev/null || die "monmaptool failed"
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null || die "ceph-authtool failed"
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" >>"$DIR/log/setup.log" 2>&1 \
    || die "ceph-mon --mkfs failed: $(tail -3 "$DIR/log/setup.log")"
  ceph-mon -c "$CONF" -i a 9>&- >>"$DIR/log/setup.log" 2>&1 || die "ceph-mon did not start: $(tail -3 "$DIR/log/mon.a.log" 2>/dev/null)"
  local uuid; uuid=$(cat /proc/sys/kernel/random/uuid)
  local id=
  for _ in $(seq 100); do # the monitor takes a moment to answer commands
    if id=$("${CEPH[@]}" osd new "$uuid" 2>>"$DIR/log/setup.log"); then break; fi
    id=
    sleep 0.2
  done
  [[ -n $id ]] || die "ceph osd new failed: $(tail -3 "$DIR/log/setup.log")"
  [[ $id == 0 ]] || die "unexpected OSD id $id"
  "${CEPH[@]}" osd crush add osd.0 1.0 root=default host=wharf >>"$DIR/log/setup.log" 2>&1 \
    || die "ceph osd crush add failed: $(tail -3 "$DIR/log/setup.log")"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$uuid" >>"$DIR/log/setup.log" 2>&1 \
    || die "ceph-osd --mkfs failed: $(tail -3 "$DIR/log/setup.log")"
  ceph-osd -c "$CONF" -i 0 9>&- >>"$DIR/log/setup.log" 2>&1 || die "ceph-osd did not start: $(tail -3 "$DIR/log/osd.0.log" 2>/dev/null)"
  # ceph-mgr (300 MB) is not needed for RGW to serve; WHARF_CEPH_MGR=1 starts it.
  if [[ ${WHARF_CEPH_MGR:-0} == 1 ]] && command -v ceph-mgr >/dev/null; then
    mkdir -p "$data/mgr.x"
    ceph-mgr -c "$CONF" -i x 9>&- >>"$DIR/log/setup.log" 2>&1 || echo "ceph-rgw: ceph-mgr did not start (not needed)" >&2
  fi
  local ok=
  for _ in $(seq 300); do
    if "${CEPH[@]}" osd stat 2>/dev/null | grep -q '1 up'; then ok=1; break; fi
    sleep 0.1
  done
  [[ -n $ok ]] || die "the OSD did not come up: $(tail -3 "$DIR/log/osd.0.log" 2>/dev/null)"
  mkdir -p "$data/rgw"
  "${MALLOC_TUNE[@]}" radosgw -c "$CONF" -n client.rgw 9>&- >>"$DIR/log/setup.log" 2>&1 || die "radosgw did not start: $(tail -3 "$DIR/log/client.rgw.log" 2>/dev/null)"
  ok=
  for _ in $(seq 600); do
    if rgw_up; then ok=1; break; fi
    sleep 0.1
  done
  [[ -n $ok ]] || die "radosgw does not answer on 127.0.0.1:$RGW_PORT: $(tail -3 "$DIR/log/client.rgw.log" 2>/dev/null)"
  radosgw-admin -c "$CONF" -n client.rgw user create --uid=wharf --display-name=wharf \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >>"$DIR/log/setup.log" 2>&1 \
    || die "radosgw-admin user create failed: $(tail -3 "$DIR/log/setup.log")"
  print_env
}

# One start or stop at a time (test files running in parallel share the cluster).
lock() { exec 9>"${DIR%/}.lock"; flock -w 180 9 || die "another ceph-rgw.sh holds ${DIR%/}.lock"; }

case ${1:-start} in
  start) lock; start ;;
  env) print_env ;;
  status) rgw_up && running client.rgw ;;
  stop) lock; stop ;;
  *) echo "usage: $0 start|env|status|stop" >&2; exit 1 ;;
esac
