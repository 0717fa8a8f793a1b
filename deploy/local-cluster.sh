#!/usr/bin/env bash
# The whole deployment on this one machine, on loopback only: PostgreSQL 15, SeaweedFS (S3),
# the demo plant published to S3, portal and sharing-server replicas, nginx in front.
#   bash deploy/local-cluster.sh up [--replicas 2] [--port 8080]   # prints the URL
#   bash deploy/local-cluster.sh status
#   bash deploy/local-cluster.sh down                              # stops every process
# State, logs and data: PORTAL_CLUSTER_DIR (default /tmp/sponsor-portal-cluster).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "up" ]; then
    python3 -m pip install --quiet --disable-pip-version-check -r requirements.txt
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    missing=()
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
    [ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
    if [ "${#missing[@]}" -gt 0 ]; then
        # Debian would create and start clusters and a site of its own: it is told not to
        # create a cluster; nginx's own service is stopped again (ours runs from our config).
        $SUDO mkdir -p /etc/postgresql-common
        echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
        $SUDO apt-get update -qq
        $SUDO env DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1 apt-get install -y -qq \
            -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
        if [[ " ${missing[*]} " == *" nginx "* ]]; then
            $SUDO service nginx stop >/dev/null 2>&1 || true
        fi
    fi
fi
exec python3 deploy/local_cluster.py "$@"
