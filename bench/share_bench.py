"""The sponsor data share as its clients meet it: `python -m warehouse share` as a real process
on a free loopback port over a bench warehouse, one token per client in a data root of the
bench's own, and clients speaking plain HTTP through requests, each with its own session, as
a sponsor's script would (the official client pins libraries ours does not: see
tests/share_support.py). The server is always stopped when the block ends.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TypeVar

import polars as pl
import requests

from bench.page_bench import p95
from bench.plants import WORK
from portal import tokens
from tests.share_support import start_share_server, stop_share_server
from warehouse import catalogue, clock, layout
from warehouse.filters import Filters
from warehouse.scope import open_sponsor_scope, snapshot_info, sponsor_ids

TABLE = "batch_event"  # the largest table of every plant
DATASET = "batches"
TIMEOUT = 120  # seconds per request: other engineers share the 2 cores
T = TypeVar("T")


@dataclass
class Client:
    """One sponsor's script: its token's secret and an HTTP session of its own."""

    sponsor: str
    secret: str
    url: str  # http://127.0.0.1:PORT
    session: requests.Session

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.secret}"}
        answer = self.session.request(
            method, self.url + path, headers=headers, timeout=TIMEOUT, **kwargs
        )
        answer.raise_for_status()
        return answer

    def table_path(self, table: str) -> str:
        return f"/delta-sharing/shares/{self.sponsor}/schemas/quality/tables/{table}"

    def file_urls(self, table: str) -> list[str]:
        """The signed URLs of the table's files, from a Delta Sharing query."""
        answer = self.call("POST", self.table_path(table) + "/query", json={})
        lines = [json.loads(line) for line in answer.text.splitlines()]
        return [line["file"]["url"] for line in lines if "file" in line]

    def fetch(self, url: str) -> bytes:
        # A signed URL is the credential: clients send no bearer token with it.
        answer = self.session.get(url, timeout=TIMEOUT)
        answer.raise_for_status()
        return answer.content


@contextmanager
def running_share(warehouse: Path, clients: int, first: str) -> Iterator[list[Client]]:
    """The share over `warehouse` and `clients` clients, each with a token of its own, spread
    over the warehouse's sponsors in turn from `first` (whose client is the first); the
    server stops when the block ends."""
    data_root = WORK / "share" / warehouse.name
    shutil.rmtree(data_root, ignore_errors=True)  # a fresh token store and access log
    data_root.mkdir(parents=True)
    sponsors = [first, *(s for s in sponsor_ids(warehouse) if s != first)]
    expires = clock.today() + timedelta(days=7)
    kept = os.environ.get("PORTAL_DATA_DIR")
    os.environ["PORTAL_DATA_DIR"] = str(data_root)  # tokens.create writes under the data root
    try:
        issued = []
        for number in range(clients):
            sponsor = sponsors[number % len(sponsors)]
            _, secret = tokens.create(sponsor, f"bench client {number}", expires, "bench")
            issued.append((sponsor, secret))
    finally:
        if kept is None:
            os.environ.pop("PORTAL_DATA_DIR")
        else:
            os.environ["PORTAL_DATA_DIR"] = kept
    server = start_share_server(warehouse, data_root, data_root / "server.log")
    sessions = [requests.Session() for _ in issued]
    try:
        yield [Client(s, secret, server.url, session)
               for (s, secret), session in zip(issued, sessions, strict=True)]  # fmt: skip
    finally:
        for session in sessions:
            session.close()
        stop_share_server(server)


def _timed(work: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def _repeat(once: Callable[[], T], runs: int) -> tuple[float, list[tuple[float, T]]]:
    """The first (cold) call's time, then `runs` timed calls with their results."""
    first, _ = _timed(once)
    return first, [_timed(once) for _ in range(runs)]


@dataclass(frozen=True)
class Reading:
    """One way of reading the same rows: its first read, the median of the reads after it,
    what the last one read, and for a table its files and the Delta Sharing query's part."""

    first: float
    median: float
    frame: pl.DataFrame
    files: int = 0
    size: int = 0  # bytes fetched or read
    listing: float = 0.0  # median time of the query listing the files' signed URLs


def _read_files(sources: list[bytes] | list[Path]) -> pl.DataFrame:
    return pl.concat([
        pl.read_parquet(io.BytesIO(s) if isinstance(s, bytes) else s, hive_partitioning=False)
        for s in sources
    ])  # fmt: skip


def download_table(client: Client, table: str, runs: int) -> Reading:
    """The sponsor's whole table through the share: the query, then every signed URL fetched
    in turn and read into polars."""

    def once() -> tuple[float, list[bytes], pl.DataFrame]:
        listing, urls = _timed(lambda: client.file_urls(table))
        bodies = [client.fetch(url) for url in urls]
        return listing, bodies, _read_files(bodies)

    first, timings = _repeat(once, runs)
    _, (_, bodies, frame) = timings[-1]
    return Reading(first, statistics.median(t for t, _ in timings), frame, len(bodies),
                   sum(map(len, bodies)),
                   statistics.median(listing for _, (listing, _, _) in timings))  # fmt: skip


def read_partition(warehouse: Path, sponsor: str, table: str, runs: int) -> Reading:
    """The same files read from disk with polars: the floor any client could reach."""
    directory = layout.partition_dir(snapshot_info(warehouse).path, table, sponsor)
    files = sorted(directory.glob("*.parquet"))
    first, timings = _repeat(lambda: _read_files(files), runs)
    return Reading(first, statistics.median(t for t, _ in timings), timings[-1][1], len(files),
                   sum(f.stat().st_size for f in files))  # fmt: skip


# Earlier than any plant's first batch: the period covers the sponsor's whole dataset.
WHOLE_PERIOD_START = date(2000, 1, 1)


def whole_period() -> Filters:
    return Filters(start=WHOLE_PERIOD_START, end=clock.today())


def dataset_over_api(client: Client, name: str, filters: Filters, runs: int) -> Reading:
    """Every page of the dataset as Parquet from the REST API, read into polars. The first
    read is the server's first for this sponsor: it opens the sponsor's scope."""

    def once() -> pl.DataFrame:
        params: dict[str, str] | None = {"format": "parquet", "start": filters.start.isoformat(),
                                         "end": filters.end.isoformat()}  # fmt: skip
        path: str | None = f"/api/v1/datasets/{name}"
        pages = []
        while path:
            answer = client.call("GET", path, params=params)
            pages.append(pl.read_parquet(io.BytesIO(answer.content)))
            following = answer.links.get("next", {}).get("url")
            path = following.removeprefix(client.url) if following else None
            params = None  # the next page's link carries them
        return pl.concat(pages)

    first, timings = _repeat(once, runs)
    return Reading(first, statistics.median(t for t, _ in timings), timings[-1][1])


def dataset_in_process(
    warehouse: Path, sponsor: str, name: str, filters: Filters, runs: int
) -> Reading:
    """The same rows computed in this process as the API computes them: the catalogue's
    query over the sponsor's own scope, shaped for the API. The first read opens the scope."""
    model = catalogue.dataset(name)
    opening, scope = _timed(lambda: open_sponsor_scope(warehouse, sponsor))
    try:
        first, timings = _repeat(
            lambda: model.for_api(model.function(scope=scope, filters=filters,
                                                 today=clock.today())), runs)  # fmt: skip
    finally:
        scope.close()
    return Reading(opening + first, statistics.median(t for t, _ in timings), timings[-1][1])


def round_trip(client: Client) -> float:
    """One client round: the table's metadata, its query, and its first file fetched."""
    started = time.perf_counter()
    client.call("GET", client.table_path(TABLE) + "/metadata")
    client.fetch(client.file_urls(TABLE)[0])
    return time.perf_counter() - started


@dataclass(frozen=True)
class Rounds:
    p95: float
    median: float
    samples: int
    seconds: float  # wall time of the whole load


def _rounds(samples: list[float], seconds: float) -> Rounds:
    return Rounds(p95(samples), statistics.median(samples), len(samples), seconds)


def one_at_a_time(clients: list[Client], rounds: int) -> Rounds:
    """Round times with one client at a time: the clients take turns, one round each."""
    round_trip(clients[0])
    seconds, samples = _timed(lambda: [round_trip(clients[n % len(clients)])
                                       for n in range(rounds)])  # fmt: skip
    return _rounds(samples, seconds)


def all_at_once(
    clients: list[Client], rounds: int, think: tuple[float, float] | None = None
) -> Rounds:
    """Round times while every client runs `rounds` rounds at once, after one warm-up round
    each. With `think` (seconds, low and high) each client waits a random time in that range
    before each round; without it, rounds are back to back."""
    for client in clients:
        round_trip(client)  # the token's first use is recorded; the connection is open
    samples: list[float] = []
    failures: list[Exception] = []
    lock = threading.Lock()
    start = threading.Barrier(len(clients))

    def client_loop(number: int, client: Client) -> None:
        pause = random.Random(number)  # seeded: the same pattern every run
        start.wait()
        mine = []
        try:
            for _ in range(rounds):
                if think:
                    time.sleep(pause.uniform(*think))
                mine.append(round_trip(client))
        except (requests.RequestException, ValueError) as exc:
            with lock:
                failures.append(exc)
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client_loop, args=pair) for pair in enumerate(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} client(s) failed, e.g. {failures[0]}")
    return _rounds(samples, seconds)
