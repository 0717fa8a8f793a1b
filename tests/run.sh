#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh machine, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -r requirements.txt

# Browser tests drive Debian's Chromium; Playwright never downloads a browser here.
if [ ! -x /usr/bin/chromium ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# The store's tests start their own PostgreSQL 15 cluster (tests/postgres_support.py): only
# the server's programs are needed. Debian would create and start a cluster of its own on
# install; it is told not to.
if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1 apt-get install -y -qq \
        -o Dpkg::Options::=--force-confold postgresql-15 >/dev/null
fi

# The deployment's tests (tests/deploy) run nginx from Debian as their own process; Debian's
# own nginx service is stopped again after the install.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
    $SUDO service nginx stop >/dev/null 2>&1 || true
fi

# Apache Spark (pyspark) reads a published snapshot in the tests: it needs a Java 17 runtime.
if ! command -v java >/dev/null; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi

# The official delta-sharing client pins pyarrow <= 23 and pandas < 3: it gets a virtual
# environment of its own, made here once per machine (tests/share_support.py).
python3 -c "from tests.share_support import client_python; client_python()"

python3 -m pytest "$@"
