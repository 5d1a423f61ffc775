#!/usr/bin/env bash
# A throwaway single-node Ceph with an in-memory OSD and a RADOS Gateway (S3) on 127.0.0.1.
# usage: ceph_rgw.sh DIR PORT ACCESS_KEY SECRET_KEY   (Debian: apt-get install radosgw ceph-mon ceph-osd ceph-common)
# Stop it with: kill $(cat DIR/pids)
set -euo pipefail
dir=$1 port=$2 access=$3 secret=$4
mkdir -p "$dir"/{mon,osd,rgw,run}
fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
monport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
conf=$dir/ceph.conf
cat > "$conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$monport
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd objectstore = memstore
memstore device bytes = 1073741824
osd max object name len = 256
osd max object namespace len = 64
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/\$name.log
pid file = $dir/run/\$name.pid
[mon.a]
mon data = $dir/mon
[osd.0]
osd data = $dir/osd
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$port
rgw data = $dir/rgw
rgw dns name = 127.0.0.1
CONF
monmaptool --create --addv a "[v1:127.0.0.1:$monport]" --fsid "$fsid" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap"
ceph-mon -c "$conf" -i a
osd_uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
timeout 60 ceph -c "$conf" osd new "$osd_uuid" >/dev/null
ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" 2>/dev/null
ceph-osd -c "$conf" -i 0
radosgw -c "$conf" -n client.rgw.a
for _ in $(seq 1 120); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port', timeout=1)" 2>/dev/null; then break; fi
  sleep 0.5
done
timeout 60 radosgw-admin -c "$conf" -n client.rgw.a user create --uid=mloop --display-name=mloop \
  --access-key="$access" --secret-key="$secret" >/dev/null 2>&1
cat "$dir"/run/*.pid > "$dir/pids"  # the fixture reads run/*.pid itself
