"""Real servers for the fault and security tests: gunicorn processes and a private PostgreSQL.

The reliability tests run the service the way production does (``gunicorn``, several worker
processes, a real database), so that killing a worker or stopping the database is a real fault and
not a mock. Everything here talks to 127.0.0.1 only.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from glob import glob
from pathlib import Path

from sqlalchemy import text

from tests.helpers import (
    ORIGIN,
    AdminClient,
    configured_app,
    create_campaign,
    create_site,
    free_port,
    postgres_missing,
    server_environment,
    until,
    wait_for_server,
)
from widget_server import PROJECT_ROOT
from widget_server.extensions import db
from widget_server.services.platform.tokens import create_token

#: gunicorn's settings as shipped (``widget_server/gunicorn_conf.py``), instead of its defaults.
SHIPPED_CONFIG = {"GUNICORN_CMD_ARGS": "--config python:widget_server.gunicorn_conf"}


# --- HTTP ---------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes
    elapsed_s: float

    def json(self):
        return json.loads(self.body)


def request(base_url: str, method: str, path: str, body=None, headers=None, timeout_s=15.0):
    """One HTTP request on a new connection; connection failures raise ``OSError``."""
    host, port = base_url.removeprefix("http://").split(":")
    data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
    started = time.monotonic()
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
    try:
        connection.request(method, path, body=data, headers=headers or {})
        response = connection.getresponse()
        payload = response.read()
    except http.client.HTTPException as err:  # e.g. RemoteDisconnected: the worker died
        raise ConnectionError(str(err)) from err
    finally:
        connection.close()
    return Answer(
        response.status,
        {k.lower(): v for k, v in response.getheaders()},
        payload,
        time.monotonic() - started,
    )


def post_public(base_url, site_key, endpoint, body, origin=None, headers=None, timeout_s=15.0):
    """POST like the snippet: a JSON string with ``Content-Type: text/plain``."""
    sent = {"Content-Type": "text/plain;charset=UTF-8", **(headers or {})}
    if origin:
        sent["Origin"] = origin
    return request(base_url, "POST", f"/api/v1/sites/{site_key}/{endpoint}", body, sent, timeout_s)


# --- gunicorn -----------------------------------------------------------------------------------


class Gunicorn:
    """``gunicorn 'widget_server:create_app()'`` in a child process, configured by environment;
    a context manager that stops it."""

    def __init__(self, database_url: str, workers: int = 2, env: dict | None = None):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.instance_dir = Path(tempfile.mkdtemp(prefix="fc-gunicorn-"))
        self.log_path = self.instance_dir / "gunicorn.log"
        environment = server_environment(
            self.instance_dir,
            DATABASE_URL=database_url,
            SECRET_KEY="reliability-tests",
            RATELIMIT_ENABLED="false",
            EVALUATE_INTERVAL_S="0",
        )
        environment.update(env or {})
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--graceful-timeout",
            "2",
            "--timeout",
            "60",
            "--log-level",
            "warning",
            "widget_server:create_app()",
        ]
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop())
        self.process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=environment, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.workers = workers
        try:
            wait_for_server(self.base_url, self.process, self.log, timeout_s=30)
            self.wait_for_workers()
        except BaseException:
            self.stop()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        """The worker processes (children of the gunicorn master)."""
        return children_of(self.process.pid)

    def wait_for_workers(self, timeout_s: float = 30.0) -> None:
        """Wait until the master runs all its workers (it replaces a dead one)."""
        full = until(
            lambda: len(self.worker_pids()) == self.workers, timeout_s=timeout_s, interval_s=0.1
        )
        assert full, f"gunicorn did not start all its workers:\n{self.log()}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        shutil.rmtree(self.instance_dir, ignore_errors=True)


class Worker:
    """``funnelcake worker`` in a child process: the applier (and rounds, deliveries) that
    production runs beside gunicorn, on the same database and environment."""

    def __init__(self, database_url: str, env: dict | None = None):
        self.database_url = database_url
        self.instance_dir = Path(tempfile.mkdtemp(prefix="fc-worker-"))
        self.log_path = self.instance_dir / "worker.log"
        environment = server_environment(
            self.instance_dir,
            DATABASE_URL=database_url,
            SECRET_KEY="reliability-tests",
            EVALUATE_INTERVAL_S="0",
            APPLIER_IDLE_S="0.05",
        )
        environment.update(env or {})
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "widget_server", "worker"],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): stored events wait, as when the load outpaces it."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def wait_until_applied(self, timeout_s: float = 120.0) -> None:
        """Wait until no stored event is pending (the applier has caught up)."""
        deadline = time.monotonic() + timeout_s
        while pending_events(self.database_url):
            assert self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, f"events still pending:\n{self.log()}"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        shutil.rmtree(self.instance_dir, ignore_errors=True)


def pending_events(database_url: str) -> int:
    """How many stored events wait for the applier, read from outside the servers."""
    app = configured_app(database_url)
    with app.app_context():
        try:
            return db.session.execute(text("SELECT count(*) FROM events WHERE pending")).scalar()
        finally:
            db.session.remove()
            db.engine.dispose()


def children_of(pid: int) -> list[int]:
    children = []
    for stat_path in glob("/proc/[0-9]*/stat"):
        try:
            stat = Path(stat_path).read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ..."; comm may hold spaces, so split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            children.append(int(stat_path.split("/")[2]))
    return sorted(children)


def _tcp_sockets() -> dict[int, tuple[int, int, str]]:
    """``{inode: (local_port, remote_port, state)}`` of every TCP socket of this host."""
    sockets = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            sockets[int(fields[9])] = (local_port, remote_port, fields[3])
    return sockets


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


ESTABLISHED = "01"


def worker_holding(server: Gunicorn, client_port: int) -> int | None:
    """The worker process that holds the server side of the client's connection, if any."""
    sockets = _tcp_sockets()
    for pid in server.worker_pids():
        for inode in _socket_inodes(pid):
            local_port, remote_port, state = sockets.get(inode, (0, 0, ""))
            if local_port == server.port and remote_port == client_port and state == ESTABLISHED:
                return pid
    return None


def workers_mid_request(server: Gunicorn) -> list[int]:
    """Workers holding an accepted client connection right now (a sync worker: mid-request)."""
    sockets = _tcp_sockets()
    busy = []
    for pid in server.worker_pids():
        for inode in _socket_inodes(pid):
            local_port, _, state = sockets.get(inode, (0, 0, ""))
            if local_port == server.port and state == ESTABLISHED:
                busy.append(pid)
                break
    return busy


class HalfSentRequest:
    """A request whose last header line is held back, so the worker that took it waits for it.

    A sync gunicorn worker serves one connection at a time: while it waits for the rest of this
    request, the next connection goes to another worker. That pins requests to known workers.
    """

    def __init__(self, server: Gunicorn, method: str, path: str, body: bytes, headers: dict):
        self.server = server
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=15)
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        self.sock.sendall(("\r\n".join(head) + "\r\n").encode())
        self.rest = b"Connection: close\r\n\r\n" + body

    def worker(self, timeout_s: float = 10.0) -> int:
        """The worker that accepted this connection (waits until one has)."""
        client_port = self.sock.getsockname()[1]
        pid = until(
            lambda: worker_holding(self.server, client_port), timeout_s=timeout_s, interval_s=0.02
        )
        assert pid, "no worker accepted the connection"
        return pid

    def finish(self) -> tuple[int, dict]:
        """Send the rest; the status and headers of the answer."""
        self.sock.sendall(self.rest)
        response = http.client.HTTPResponse(self.sock)
        response.begin()
        headers = {k.lower(): v for k, v in response.getheaders()}
        response.read()
        self.sock.close()
        return response.status, headers


# --- seeding ------------------------------------------------------------------------------------


def seed_site(database_url: str, origins=(ORIGIN,), campaign: bool = True):
    """Create a site (and a running one-variant survey) through the admin API, in process.

    Returns ``(site, campaign)`` as the admin API answers them (``campaign`` None when not asked).
    """
    app = configured_app(database_url)
    with app.app_context():
        admin = AdminClient(app.test_client(), create_token("reliability"))
        site = create_site(admin, origins=origins)
        made = create_campaign(admin, site) if campaign else None
        db.session.remove()
        db.engine.dispose()
    return site, made


def new_visitor_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def event_batches(
    client_name: str, campaign: dict, events: int, batch_size: int, visitor_id: str | None = None
) -> list[list]:
    """``events`` events of one visitor (impressions, answers, conversions) cut into batches."""
    visitor_id = visitor_id or new_visitor_id(client_name)
    variant_id = campaign["variants"][0]["id"]
    made = []
    for index in range(events):
        kind = ("impression", "answer", "convert")[index % 3]
        event = {"id": uuid.uuid4().hex, "type": kind, "visitor_id": visitor_id, "data": {}}
        if kind != "convert":
            event.update(campaign_id=campaign["id"], variant_id=variant_id)
        if kind == "answer":
            event["data"] = {"step_id": "q1", "value": "search"}
        if kind == "convert":
            event["data"] = {"name": "signup"}
        made.append(event)
    return [made[i : i + batch_size] for i in range(0, events, batch_size)]


def decided(base_url, site_key, visitor_id, origin, deadline_s=60.0) -> None:
    """Decide for the visitor as the snippet does before any event: the server folds events
    only into assignments it made. Retried until it answers 200 (a fault test may be running)."""
    body = {"visitor_id": visitor_id, "url": f"{origin or 'https://shop.example'}/"}

    def answered() -> bool:
        try:
            answer = post_public(base_url, site_key, "decide", body, origin=origin, timeout_s=30)
        except OSError:
            return False
        return answer.status == 200

    assert until(answered, timeout_s=deadline_s, interval_s=0.3), f"no decide for {visitor_id}"


class Storefront(threading.Thread):
    """One visitor's browser: sends batches one after another until ``stop`` is set.

    A batch that fails (any non-2xx, or a broken connection) is sent again after a short pause
    until it is acknowledged, as the snippet does; ``acknowledged`` lists the ids of every event
    whose batch got a 202.
    """

    def __init__(self, server, site, campaign, name, stop, origin, events_per_batch=10):
        super().__init__(daemon=True)
        self.server, self.site, self.campaign = server, site, campaign
        self.client_name, self.stop, self.origin = name, stop, origin
        self.events_per_batch = events_per_batch
        self.visitor_id = new_visitor_id(name)
        self.answers: list[Answer] = []
        self.acknowledged: list[str] = []
        self.connection_errors = 0

    def run(self):
        deadline = time.monotonic() + 120
        decided(self.server.base_url, self.site["site_key"], self.visitor_id, self.origin)
        while not self.stop.is_set() and time.monotonic() < deadline:
            (batch,) = event_batches(
                self.client_name,
                self.campaign,
                self.events_per_batch,
                self.events_per_batch,
                self.visitor_id,
            )
            while time.monotonic() < deadline:
                try:
                    answer = post_public(
                        self.server.base_url,
                        self.site["site_key"],
                        "events",
                        {"events": batch},
                        origin=self.origin,
                        timeout_s=30,
                    )
                except OSError:
                    self.connection_errors += 1
                    time.sleep(0.3)
                    continue
                self.answers.append(answer)
                if answer.status == 202:
                    self.acknowledged.extend(e["id"] for e in batch)
                    break
                time.sleep(0.3)


@contextmanager
def storefronts(served, count: int, name: str, origin: str):
    """``count`` storefronts sending to ``served.server`` for ``served.site`` and its
    ``served.campaign`` while the block runs; stopped and waited for when it ends."""
    stop = threading.Event()
    clients = [
        Storefront(served.server, served.site, served.campaign, f"{name}-{i}", stop, origin)
        for i in range(count)
    ]
    for client in clients:
        client.start()
    try:
        yield clients
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=60)


# --- a private PostgreSQL cluster ---------------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with initdb and pg_ctl, if any."""
    found = [
        Path(path)
        for path in glob("/usr/lib/postgresql/*/bin")
        if (Path(path) / "initdb").exists() and (Path(path) / "pg_ctl").exists()
    ]
    return max(found, key=lambda p: int(p.parent.name), default=None) if found else None


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port that a test may stop and start at will.

    The shared server on 5432 is never touched: other tests use it. As root, the cluster runs as
    the ``postgres`` OS user (PostgreSQL refuses to run as root).
    """

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="fc-pg-"))
        self.data_dir = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", self.data_dir, "-U", "postgres", "-A", "trust", "-N")
        self.start()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/funnelcake"
        self._run_sql("CREATE DATABASE funnelcake")

    def _run(self, tool: str, *args) -> None:
        command = [str(self.bin_dir / tool), *map(str, args)]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def _run_sql(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as connection:
            connection.execute(sql)

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c full_page_writes=off -c max_connections=100"
        )
        self._run("pg_ctl", "-D", self.data_dir, "-l", self.log_path, "-o", options, "-w", "start")

    def stop(self) -> None:
        """Stop at once (``-m fast``: open sessions are ended, as in a crash of the network)."""
        self._run("pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)


def private_postgres() -> PrivatePostgres:
    """Start a private cluster, or skip (fail in CI) saying what is missing."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        postgres_missing("no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        postgres_missing("running as root without runuser to start PostgreSQL as 'postgres'")
    return PrivatePostgres(bin_dir)
