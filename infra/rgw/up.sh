#!/usr/bin/env bash
# Starts a single-node Ceph cluster with a RADOS Gateway on 127.0.0.1:7480: a real S3 server for
# the tests (KVFOLD_TEST_S3=rgw, see packages/storage/src/testing.ts), without containers or
# systemd.
#
#   infra/rgw/up.sh [dir]      dir defaults to /tmp/kvfold-rgw
#
# One monitor, one manager, one OSD on memstore (objects live in the OSD's memory, at most 2 GiB)
# and one radosgw, all run as the current user with their config, data, pid files, sockets and
# logs under dir; nothing goes to /etc/ceph or /var/lib/ceph. Authentication between the daemons
# is off (auth none), pools have one replica. An S3 user `kvfold` is created, and dir/env gets
# the settings the tests read:
#
#   KVFOLD_TEST_S3=rgw
#   KVFOLD_TEST_S3_ENDPOINT=http://127.0.0.1:7480
#   KVFOLD_TEST_S3_ACCESS_KEY=...
#   KVFOLD_TEST_S3_SECRET_KEY=...
#
# Use them with `set -a; . dir/env; set +a`. Installs Debian's ceph packages (radosgw, ceph-mon,
# ceph-osd, ceph-mgr, ceph-common) when radosgw is missing. Running it again while the gateway
# answers and the user exists does nothing. infra/rgw/down.sh stops it all and removes dir.
set -euo pipefail

dir=${1:-/tmp/kvfold-rgw}
port=7480
endpoint="http://127.0.0.1:${port}"
uid=kvfold
started=$SECONDS

log() { printf 'rgw: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local limit=$1 deadline
  shift
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}

answers() { curl -fsS --max-time 2 -o /dev/null "$endpoint"; }

# Already up: the gateway answers, the user is there and the env file is written.
if [[ -f "$dir/ceph.conf" && -f "$dir/env" ]] && answers &&
  radosgw-admin -c "$dir/ceph.conf" user info --uid "$uid" >/dev/null 2>&1; then
  log "already running at $endpoint (settings in $dir/env)"
  exit 0
fi

if ! command -v radosgw >/dev/null || ! command -v curl >/dev/null || ! command -v uuidgen >/dev/null; then
  log 'installing radosgw, ceph-mon, ceph-osd, ceph-mgr, ceph-common'
  install_started=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq radosgw ceph-mon ceph-osd ceph-mgr ceph-common curl uuid-runtime >/dev/null
  log "installed in $((SECONDS - install_started)) s"
fi

# A leftover cluster in dir (half started, or its gateway gone) is replaced by a fresh one.
if [[ -d "$dir" ]]; then
  log "removing the previous cluster in $dir"
  "$(dirname "$0")/down.sh" "$dir"
fi
start_started=$SECONDS
mkdir -p "$dir"/{run,log,mon/ceph-a,mgr/ceph-a,osd/ceph-0,rgw}
dir=$(cd "$dir" && pwd)
conf="$dir/ceph.conf"
fsid=$(uuidgen)

# auth none needs the gateway's monitor connection in crc mode: it defaults to secure, which a
# cluster without authentication cannot offer, and it then retries forever without listening.
cat >"$conf" <<EOF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:3300,v1:127.0.0.1:6789]
mon_initial_members = a
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
run_dir = $dir/run
admin_socket = $dir/run/\$name.asok
pid_file = $dir/run/\$name.pid
log_file = $dir/log/\$name.log
keyring = $dir/keyring
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_warn_on_insecure_global_id_reclaim_allowed = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0

[mon]
mon_data = $dir/mon/\$cluster-\$id

[mgr]
mgr_data = $dir/mgr/\$cluster-\$id

[osd]
osd_data = $dir/osd/\$cluster-\$id
osd_objectstore = memstore
memstore_device_bytes = 2147483648

[client]
ms_mon_client_mode = crc

[client.rgw.a]
rgw_data = $dir/rgw
rgw_frontends = beast endpoint=127.0.0.1:$port
EOF
ceph=(ceph -c "$conf")

log 'starting the monitor'
monmaptool --create --addv a '[v2:127.0.0.1:3300,v1:127.0.0.1:6789]' --fsid "$fsid" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" >/dev/null 2>&1
ceph-mon -c "$conf" -i a
wait_for 30 "${ceph[@]}" --connect-timeout 2 mon stat || die "the monitor did not answer (see $dir/log)"

log 'starting the manager'
ceph-mgr -c "$conf" -i a

log 'starting the OSD (memstore)'
osd_uuid=$(uuidgen)
osd_id=$("${ceph[@]}" osd new "$osd_uuid")
[[ $osd_id == 0 ]] || die "expected OSD id 0, the monitor gave $osd_id"
ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1
ceph-osd -c "$conf" -i 0 2>>"$dir/log/osd.0.start.log"
osd_up() { "${ceph[@]}" osd dump 2>/dev/null | grep -q '^osd\.0 up'; }
wait_for 60 osd_up || die "the OSD did not come up (see $dir/log)"
# Health warnings are fine here (e.g. a manager still starting); an error is not.
healthy() { "${ceph[@]}" health 2>/dev/null | grep -Eq '^HEALTH_(OK|WARN)'; }
wait_for 60 healthy || die "the cluster is not healthy: $("${ceph[@]}" health detail 2>&1)"

log 'starting radosgw'
radosgw -c "$conf" -n client.rgw.a
wait_for 90 answers || die "radosgw did not answer on $endpoint (see $dir/log/client.rgw.a.log)"

access_key=$(od -An -tx1 -N10 /dev/urandom | tr -d ' \n' | tr 'a-f' 'A-F')
secret_key=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
radosgw-admin -c "$conf" user create --uid "$uid" --display-name "$uid" \
  --access-key "$access_key" --secret "$secret_key" >/dev/null
cat >"$dir/env.tmp" <<EOF
KVFOLD_TEST_S3=rgw
KVFOLD_TEST_S3_ENDPOINT=$endpoint
KVFOLD_TEST_S3_ACCESS_KEY=$access_key
KVFOLD_TEST_S3_SECRET_KEY=$secret_key
EOF
mv "$dir/env.tmp" "$dir/env"

log "up at $endpoint in $((SECONDS - start_started)) s (all: $((SECONDS - started)) s); settings in $dir/env"
