"""The whole deployment on this one machine, loopback only (`bash deploy/local-cluster.sh`):
PostgreSQL 15 (the portal's store), SeaweedFS (`weed mini`, the S3 warehouse, one identity
per sponsor), the demo plant published to S3 by the nightly job, N portal replicas and N
sharing-server replicas with one cookie key and one URL-signing key, and nginx in front
(sticky sessions for Streamlit's websocket). Everything lives in PORTAL_CLUSTER_DIR
(default /tmp/sponsor-portal-cluster); `down` stops every process it started.

    python deploy/local_cluster.py up [--replicas 2] [--port 8080] [--source PLANT.sqlite]
    python deploy/local_cluster.py status
    python deploy/local_cluster.py down
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(os.environ.get("PORTAL_CLUSTER_DIR", "/tmp/sponsor-portal-cluster"))
STATE = HERE / "state.json"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
BUCKET, PREFIX = "portal", "sponsor-portal"
OWNER, APP_ROLE, DATABASE = "portal_owner", "portal_web", "portal"
NGINX_TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
DEFAULT_PORT = 8080


class ClusterError(Exception):
    pass


# --- small helpers --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _front_port() -> int:
    """nginx's port: DEFAULT_PORT when it is free, else any free one (the URL is printed)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", DEFAULT_PORT))
        except OSError:
            return free_port()
    return DEFAULT_PORT


def program(name: str) -> str:
    beside = Path(sys.executable).parent / name  # pip's `weed` lands beside the interpreter
    for found in (shutil.which(name), str(PG_BIN / name), str(beside), f"/usr/sbin/{name}"):
        if found and Path(found).is_file():
            return found
    raise ClusterError(f"`{name}` is not installed (bash deploy/local-cluster.sh installs it).")


def wait_for(what: str, ready, seconds: float = 90, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ClusterError(f"{what} stopped while starting; see {HERE / 'logs'}.")
        try:
            if ready():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.3)
    raise ClusterError(f"{what} did not become ready within {seconds:.0f} s; see {HERE / 'logs'}.")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:
            return answer.status < 500
    except urllib.error.HTTPError as answer:
        return answer.code < 500


def spawn(name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
    log = HERE / "logs" / f"{name}.log"
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- the parts ------------------------------------------------------------------------------


def start_postgres(state: dict) -> None:
    folder = HERE / "pg"
    folder.mkdir(parents=True, exist_ok=True)
    user = "postgres" if os.geteuid() == 0 else None
    password = state["pg_password"]
    if not (folder / "data").exists():
        if user:  # initdb refuses root: PostgreSQL's own user runs it, and must reach here
            entry = pwd.getpwnam(user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
            HERE.chmod(HERE.stat().st_mode | 0o111)
        secret = folder / "pw"
        secret.write_text(password + "\n")
        if user:
            os.chown(secret, pwd.getpwnam(user).pw_uid, -1)
        subprocess.run([program("initdb"), "-D", str(folder / "data"), "-U", OWNER,
                        f"--pwfile={secret}", "--auth=scram-sha-256", "-E", "UTF8"],
                       check=True, capture_output=True, user=user, timeout=120)  # fmt: skip
        secret.unlink()
    options = (f"-c listen_addresses=127.0.0.1 -p {state['ports']['postgres']} "
               f"-c unix_socket_directories={folder} -c max_connections=200")  # fmt: skip
    subprocess.run([program("pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"),
                    "-o", options, "-w", "-t", "60", "start"],
                   check=True, capture_output=True, user=user, timeout=90)  # fmt: skip


def pg_url(state: dict, role: str, database: str = DATABASE) -> str:
    return (f"postgresql://{role}:{state['pg_password']}@127.0.0.1:{state['ports']['postgres']}"
            f"/{database}")  # fmt: skip


def prepare_database(state: dict, env: dict[str, str]) -> None:
    """The portal's role and database, migrated and granted as README says, with the demo
    users (fixed demo passwords: this cluster runs the fictional demo plant only)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(pg_url(state, OWNER, "postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(APP_ROLE), sql.Literal(state["pg_password"])))  # fmt: skip
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    subprocess.run([sys.executable, "-m", "portal", "db", "upgrade", "--database-url",
                    pg_url(state, OWNER), "--grant-to", APP_ROLE],
                   check=True, cwd=ROOT, env=env, capture_output=True, timeout=120)  # fmt: skip
    script = ("from portal.users import ensure_demo_users; from portal import decisions; "
              "ensure_demo_users(); decisions.ensure_demo_signers()")  # fmt: skip
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, timeout=300,
                   env=env | {"PORTAL_DATABASE_URL": pg_url(state, APP_ROLE)})  # fmt: skip


def s3_identities(sponsors: list[str]) -> dict:
    """SeaweedFS identities: the nightly job's writer, the CMO's reader, one per sponsor limited
    to its own prefix and current.json (the trailing `/*` keeps NWT out of NWTX's objects)."""
    root = f"{BUCKET}/{PREFIX}"

    def identity(name: str, actions: list[str]) -> dict:
        return {"name": name, "actions": actions, "credentials": [
            {"accessKey": name.upper().replace("-", "_"), "secretKey": secrets.token_urlsafe(24)}
        ]}  # fmt: skip

    return {"identities": [
        identity("writer", ["Admin", "Read", "List", "Tagging", "Write"]),
        identity("cmo", [f"Read:{BUCKET}", f"List:{BUCKET}"]),
        *(identity(f"sponsor-{s}", [f"Read:{root}/tenants/{s}/*", f"List:{root}/tenants/{s}/*",
                                    f"Read:{root}/current.json*"]) for s in sponsors),
    ]}  # fmt: skip


def credentials(config: dict, name: str) -> tuple[str, str]:
    (found,) = [i for i in config["identities"] if i["name"] == name]
    return found["credentials"][0]["accessKey"], found["credentials"][0]["secretKey"]


def start_s3(state: dict, sponsors: list[str]) -> subprocess.Popen:
    folder = HERE / "s3"
    folder.mkdir(parents=True, exist_ok=True)
    config_file = folder / "identities.json"
    if not config_file.exists():
        config_file.write_text(json.dumps(s3_identities(sponsors), indent=1))
        config_file.chmod(0o600)
    ports = state["ports"]["s3"]
    services = ["s3.port.grpc", "master.port", "master.port.grpc", "volume.port",
                "volume.port.grpc", "filer.port", "filer.port.grpc", "admin.port",
                "admin.port.grpc"]  # fmt: skip
    command = [
        program("weed"), "mini", f"-dir={folder / 'data'}", "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1", "-admin.ui=false", f"-bucket={BUCKET}",
        f"-s3.config={config_file}", f"-s3.port={ports[0]}", "-s3.port.iceberg=0",
        "-s3.port.lance=0", "-webdav=false", "-master.telemetry=false",
        *(f"-{s}={p}" for s, p in zip(services, ports[1:], strict=True)),
    ]  # fmt: skip
    return spawn("s3", command, dict(os.environ))


def s3_env(state: dict, identity: str) -> dict[str, str]:
    config = json.loads((HERE / "s3" / "identities.json").read_text())
    key, secret = credentials(config, identity)
    return {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{state['ports']['s3'][0]}"}  # fmt: skip


def write_reader_identities(state: dict, sponsors: list[str]) -> Path:
    """The portal's identities file: the CMO's reader and each sponsor's own identity."""
    config = json.loads((HERE / "s3" / "identities.json").read_text())
    key, secret = credentials(config, "cmo")
    lines = ["[s3]", f'endpoint_url = "http://127.0.0.1:{state["ports"]["s3"][0]}"',
             f'access_key_id = "{key}"', f'secret_access_key = "{secret}"']  # fmt: skip
    for sponsor in sponsors:
        key, secret = credentials(config, f"sponsor-{sponsor}")
        lines += [f"[s3.sponsors.{sponsor}]", f'access_key_id = "{key}"',
                  f'secret_access_key = "{secret}"']  # fmt: skip
    path = HERE / "identities.toml"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def s3_ready(state: dict) -> bool:
    import pyarrow.fs as pafs

    env = s3_env(state, "writer")
    fs = pafs.S3FileSystem(access_key=env["AWS_ACCESS_KEY_ID"],
                           secret_key=env["AWS_SECRET_ACCESS_KEY"], scheme="http",
                           endpoint_override=env["AWS_ENDPOINT_URL"].removeprefix("http://"),
                           region="us-east-1")  # fmt: skip
    fs.get_file_info(pafs.FileSelector(BUCKET))
    return True


def write_nginx(state: dict) -> Path:
    folder = HERE / "nginx"
    for temp in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / "tmp" / temp).mkdir(parents=True, exist_ok=True)
    text = NGINX_TEMPLATE.read_text()
    servers = {
        "PORTAL_SERVERS": "".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n"
                                  for p in state["ports"]["portal"]),
        "SHARE_SERVERS": "".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n"
                                 for p in state["ports"]["share"]),
        "LISTEN": f"127.0.0.1:{state['ports']['nginx']}",
        "STATE_DIR": str(HERE),
    }  # fmt: skip
    for name, value in servers.items():
        text = text.replace("{{" + name + "}}", value.rstrip("\n"))
    path = folder / "nginx.conf"
    path.write_text(text)
    return path


# --- up, status, down -----------------------------------------------------------------------


def portal_env(state: dict) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PORTAL_"))}
    return base | {
        "PORTAL_MODE": "production",
        "PORTAL_BOOTSTRAP": "off",
        "PORTAL_DATA_DIR": str(HERE / "data"),
        "PORTAL_COOKIE_KEY": state["cookie_key"],
        "PORTAL_SHARE_KEY": state["share_key"],
        "PORTAL_DATABASE_URL": pg_url(state, APP_ROLE),
        "PORTAL_WAREHOUSE": f"s3://{BUCKET}/{PREFIX}",
        "PORTAL_S3_IDENTITIES": str(HERE / "identities.toml"),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{state['ports']['s3'][0]}",
        "AWS_REGION": "us-east-1",
    }


def start_portal(state: dict, number: int) -> subprocess.Popen:
    port = state["ports"]["portal"][number]
    command = [sys.executable, "-m", "streamlit", "run", "portal_app.py",
               "--server.address", "127.0.0.1", "--server.port", str(port),
               "--server.headless", "true"]  # fmt: skip
    return spawn(f"portal-{number + 1}", command, portal_env(state))


def start_share(state: dict, number: int) -> subprocess.Popen:
    port = state["ports"]["share"][number]
    command = [sys.executable, "-m", "warehouse", "share", "--host", "127.0.0.1",
               "--port", str(port), "--warehouse", f"s3://{BUCKET}/{PREFIX}"]  # fmt: skip
    return spawn(f"share-{number + 1}", command, portal_env(state))


def up(replicas: int, port: int | None, source: Path | None = None) -> dict:
    if STATE.exists() and any(alive(p) for p in json.loads(STATE.read_text())["pids"].values()):
        raise ClusterError(f"A cluster is already running from {HERE}: `down` first, or "
                           "`status`.")  # fmt: skip
    (HERE / "logs").mkdir(parents=True, exist_ok=True)
    previous = json.loads(STATE.read_text()) if STATE.exists() else {}
    state = {
        "replicas": replicas,
        "source": str(source.resolve()) if source else None,
        "pg_password": previous.get("pg_password", secrets.token_urlsafe(18)),
        "cookie_key": previous.get("cookie_key", secrets.token_urlsafe(48)),
        "share_key": previous.get("share_key", secrets.token_urlsafe(48)),
        "ports": {
            "postgres": free_port(), "s3": [free_port() for _ in range(10)],
            "portal": [free_port() for _ in range(replicas)],
            "share": [free_port() for _ in range(replicas)], "nginx": port or _front_port(),
        },
        "pids": {},
    }  # fmt: skip
    STATE.write_text(json.dumps(state, indent=1))
    STATE.chmod(0o600)
    try:
        return _up(state)
    except BaseException:
        down(quiet=True)
        raise


def _up(state: dict) -> dict:
    data = HERE / "data"
    env = portal_env(state)
    step("PostgreSQL 15")
    start_postgres(state)
    state["pids"]["postgres"] = int(
        (HERE / "pg" / "data" / "postmaster.pid").read_text().split()[0]
    )
    save(state)
    prepare_database(state, env)

    step("the demo plant")
    plant = data / "demo" / "source" / "plant.sqlite"
    if not plant.exists():
        run([sys.executable, "-m", "etl", "demo-source", "--out", str(plant)], env)
    published = Path(state["source"]) if state.get("source") else plant
    sponsors = demo_sponsors(published)

    step("SeaweedFS (S3)")
    weed = start_s3(state, sponsors)
    state["pids"]["s3"] = weed.pid
    save(state)
    wait_for("SeaweedFS", lambda: s3_ready(state), process=weed)
    write_reader_identities(state, sponsors)

    step("the nightly job: the demo plant into S3, and the BD demo warehouse")
    writer = env | s3_env(state, "writer")
    run([sys.executable, "-m", "etl", "run", "--source", str(published), "--warehouse",
         f"s3://{BUCKET}/{PREFIX}"], writer)  # fmt: skip
    run([sys.executable, "-m", "etl", "run", "--source", str(plant)], env)

    step(f"{state['replicas']} portal and {state['replicas']} sharing-server replicas")
    for number in range(state["replicas"]):
        state["pids"][f"portal-{number + 1}"] = start_portal(state, number).pid
        state["pids"][f"share-{number + 1}"] = start_share(state, number).pid
    save(state)
    for number in range(state["replicas"]):
        portal = state["ports"]["portal"][number]
        wait_for(f"portal replica {number + 1}",
                 lambda p=portal: http_ok(f"http://127.0.0.1:{p}/_stcore/health"))  # fmt: skip
        share = state["ports"]["share"][number]
        wait_for(f"sharing-server replica {number + 1}",
                 lambda p=share: http_ok(f"http://127.0.0.1:{p}/delta-sharing/shares"))  # fmt: skip

    step("nginx")
    conf = write_nginx(state)
    run([program("nginx"), "-t", "-c", str(conf), "-p", str(HERE / "nginx")], env)
    run([program("nginx"), "-c", str(conf), "-p", str(HERE / "nginx")], env)
    url = f"http://127.0.0.1:{state['ports']['nginx']}"
    wait_for("nginx", lambda: http_ok(f"{url}/_stcore/health"))
    state["pids"]["nginx"] = int((HERE / "nginx" / "nginx.pid").read_text().strip())
    state["url"] = url
    save(state)
    return state


def step(what: str) -> None:
    print(f"· {what}", file=sys.stderr, flush=True)


def run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    if done.returncode != 0:
        raise ClusterError(f"{' '.join(command[:4])} … failed:\n{done.stderr[-2000:]}")


def demo_sponsors(plant: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(plant) as conn:
        return sorted(r[0] for r in conn.execute("SELECT sponsor_id FROM sponsor"))


def save(state: dict) -> None:
    STATE.write_text(json.dumps(state, indent=1))


def status() -> int:
    if not STATE.exists():
        print(f"No cluster in {HERE}.")
        return 1
    state = json.loads(STATE.read_text())
    checks = {"postgres": None, "s3": None, "nginx": f"{state.get('url')}/_stcore/health"}
    for number in range(state["replicas"]):
        checks[f"portal-{number + 1}"] = (
            f"http://127.0.0.1:{state['ports']['portal'][number]}/_stcore/health"
        )
        checks[f"share-{number + 1}"] = (
            f"http://127.0.0.1:{state['ports']['share'][number]}/delta-sharing/shares"
        )
    running = 0
    for name, check in checks.items():
        pid = state["pids"].get(name)
        up_now = pid is not None and alive(pid) and (check is None or _answers(check))
        running += up_now
        print(f"{name:10} {'up' if up_now else 'DOWN':5} pid {pid or '-'}")
    print(f"portal: {state.get('url', '-')}   (sharing: {state.get('url', '-')}/delta-sharing)")
    return 0 if running == len(checks) else 1


def _answers(url: str) -> bool:
    try:
        return http_ok(url)
    except (OSError, urllib.error.URLError):
        return False


def down(quiet: bool = False) -> int:
    if not STATE.exists():
        if not quiet:
            print(f"No cluster in {HERE}.")
        return 0
    state = json.loads(STATE.read_text())
    pids = state.get("pids", {})
    for name, pid in pids.items():
        if name == "postgres":
            continue
        if alive(pid):
            _signal(name, pid, signal.SIGQUIT if name == "nginx" else signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(alive(p) for n, p in pids.items() if n != "postgres"):
        time.sleep(0.2)
    for name, pid in pids.items():
        if name != "postgres" and alive(pid):
            _signal(name, pid, signal.SIGKILL)
    if (HERE / "pg" / "data" / "postmaster.pid").exists():
        user = "postgres" if os.geteuid() == 0 else None
        subprocess.run([program("pg_ctl"), "-D", str(HERE / "pg" / "data"), "-m", "fast", "-w",
                        "stop"], capture_output=True, user=user, timeout=60)  # fmt: skip
    for number in state.get("ports", {}).get("s3", []):
        for stale in Path("/tmp").glob(f"seaweedfs-*-{number}.sock"):
            stale.unlink(missing_ok=True)
    state["pids"] = {}
    save(state)
    if not quiet:
        print("Stopped every process of the cluster.")
    return 0


def _signal(name: str, pid: int, number: signal.Signals) -> None:
    """nginx's master alone (SIGQUIT: it stops its workers gracefully); any other process
    with its group (each was started in a session of its own)."""
    with suppress(ProcessLookupError, PermissionError):
        if name == "nginx":
            os.kill(pid, number)
        else:
            os.killpg(pid, number)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bash deploy/local-cluster.sh",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start everything and print the URL")
    start.add_argument("--replicas", type=int, default=2, help="portal and sharing replicas")
    start.add_argument("--port", type=int, help="nginx's port (default 8080, else a free one)")
    start.add_argument(
        "--source", type=Path, help="a plant (SQLite) to publish to S3 instead of the demo plant"
    )
    commands.add_parser("status", help="what runs, and the URL")
    commands.add_parser("down", help="stop every process the cluster started")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            state = up(max(1, args.replicas), args.port, args.source)
            print(f"Sponsor Portal: {state['url']}")
            print(f"Sharing server: {state['url']}/delta-sharing")
            print(
                "Demo sign-ins (fictional plant): python -m portal users list; passwords as "
                "README's demo users. Stop with: bash deploy/local-cluster.sh down"
            )
            return 0
        if args.command == "status":
            return status()
        return down()
    except (ClusterError, subprocess.CalledProcessError) as failed:
        detail = getattr(failed, "stderr", b"") or b""
        detail = detail.decode(errors="replace") if isinstance(detail, bytes) else detail
        print(f"error: {failed}\n{detail[-2000:]}".rstrip(), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
