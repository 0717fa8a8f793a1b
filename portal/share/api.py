"""The sponsor API (/api/v1): the catalogue's datasets and measures for the token's sponsor,
with the portal's filters (period, products), as JSON, CSV or Parquet, paged.

Every answer is computed through the sponsor's own confined scope (warehouse.scope), opened
from the token's sponsor and nothing in the request; datasets carry the catalogue's labels
and words, plus each code as "<column>_code" for machines.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import threading
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from portal import access_log, decisions, tokens
from portal.share.errors import Bearer, CmoBearer, ShareError, not_found
from warehouse import catalogue, clock
from warehouse.filters import Filters
from warehouse.queries import cockpit
from warehouse.queries.common import products
from warehouse.scope import DataUnavailable, Scope, ScopeError, open_sponsor_scope, snapshot_info

API_PREFIX = "/api/v1"
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 100_000
DEFAULT_DAYS = 365
MEASURE_KEYS = cockpit.COCKPIT_KPIS  # the measures computed per sponsor (as the cockpit does)
SCOPES_KEPT = 32
MAX_DECISIONS = 1000  # per page of GET /decisions


def unavailable() -> ShareError:
    """503: an integrity check failed, or the live run cannot be named (a damaged pointer)."""
    return ShareError(503, "SNAPSHOT_UNAVAILABLE", "Your data is not available from the "
                      "published snapshot now; the CMO has been told.")  # fmt: skip


class _Scopes:
    """Open sponsor scopes of this server, one per (warehouse, snapshot, sponsor), the least
    recently used closed beyond SCOPES_KEPT (a new snapshot opens new ones)."""

    def __init__(self) -> None:
        self._open: OrderedDict[tuple[str, str, str], Scope] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, root: Path | str, sponsor_id: str) -> Scope:
        try:
            info = snapshot_info(root)
        except DataUnavailable:
            raise
        except ScopeError:  # the live run cannot be named (a damaged pointer on S3)
            raise unavailable() from None
        if info is None:
            raise not_found()
        key = (str(root), info.run_id, sponsor_id)
        with self._lock:
            scope = self._open.get(key)
            if scope is not None:
                self._open.move_to_end(key)
                return scope
        try:
            scope = open_sponsor_scope(root, sponsor_id)
        except DataUnavailable:
            raise
        except ScopeError:
            raise unavailable() from None
        with self._lock:
            self._open[key] = scope
            while len(self._open) > SCOPES_KEPT:
                _, dropped = self._open.popitem(last=False)
                dropped.close()
        return scope


EARLIEST, LATEST = date(1900, 1, 1), date(2199, 12, 31)  # the dates a period may name


def _filters(scope: Scope, start: date | None, end: date | None, product: list[str]) -> Filters:
    for given in (start, end):
        if given is not None and not EARLIEST <= given <= LATEST:
            raise ShareError(400, "INVALID_PARAMETER_VALUE", f"{given} is outside the dates a "
                             f"period may name ({EARLIEST} to {LATEST}).")  # fmt: skip
    end = end or clock.today()
    start = start or max(EARLIEST, end - timedelta(days=DEFAULT_DAYS))
    if end < start:
        raise ShareError(400, "INVALID_PARAMETER_VALUE", f"end ({end}) is before start "
                         f"({start}).")  # fmt: skip
    known = set(products(scope)["product_id"])
    unknown = sorted(set(product) - known)
    if unknown:
        # The same answer for another sponsor's product and for one that does not exist.
        raise ShareError(400, "INVALID_PARAMETER_VALUE", f"Unknown product: {unknown[0]}. "
                         f"GET {API_PREFIX}/products lists yours.")  # fmt: skip
    return Filters(start=start, end=end, products=tuple(sorted(set(product))))


def _rows(model: catalogue.Dataset, scope: Scope, filters: Filters) -> pl.DataFrame:
    arguments = {"scope": scope, "filters": filters, "today": clock.today()}
    wanted = inspect.signature(model.function).parameters
    return model.function(**{name: arguments[name] for name in wanted})


def _describe(model: catalogue.Dataset) -> dict[str, Any]:
    return {
        "name": model.name, "title": model.title, "description": model.description,
        "columns": [{"name": c.name, "label": c.label, "description": c.description,
                     "format": c.format, "words": c.words or None} for c in model.columns],
    }  # fmt: skip


def router(warehouse_root: Path | str) -> APIRouter:
    api = APIRouter(prefix=API_PREFIX, tags=["Sponsor API"])
    scopes = _Scopes()

    def log(request: Request, token: tokens.Token, **fields: Any) -> None:
        access_log.record_api("API_REQUEST", token, page=request.url.path, **fields)

    @api.get("/datasets", summary="The datasets your token can read, with their columns")
    def list_datasets(request: Request, token: Bearer) -> dict[str, Any]:
        log(request, token)
        names = catalogue.SPONSOR_API_DATASETS
        return {"datasets": [_describe(catalogue.dataset(n)) for n in names]}

    @api.get("/datasets/{name}", summary="Your rows of one dataset, filtered and paged")
    def read_dataset(
        request: Request,
        name: str,
        token: Bearer,
        start: date | None = None,
        end: date | None = None,
        product: Annotated[list[str] | None, Query()] = None,
        format: Literal["json", "csv", "parquet"] = "json",  # noqa: A002
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        page_size: Annotated[int | None, Query(ge=1, le=MAX_PAGE_SIZE)] = None,
    ) -> Response:
        if name not in catalogue.SPONSOR_API_DATASETS:
            raise not_found()
        model = catalogue.dataset(name)
        scope = scopes.get(warehouse_root, token.sponsor_id)
        filters = _filters(scope, start, end, product or [])
        rows = model.for_api(_rows(model, scope, filters))
        size = page_size or (DEFAULT_PAGE_SIZE if format == "json" else MAX_PAGE_SIZE)
        shown = rows.slice((page - 1) * size, size)
        more = page * size < rows.height
        link = None
        if more:
            link = str(request.url.include_query_params(page=page + 1, page_size=size))
        headers = {"X-Total-Rows": str(rows.height), "X-Snapshot": scope.snapshot.run_id}
        if link:
            headers["Link"] = f'<{link}>; rel="next"'
        if format == "csv":
            labels = {c.name: c.label for c in model.columns}
            headed = shown.rename({n: labels.get(n) or f"{labels[n[:-5]]} code"
                                   for n in shown.columns})  # fmt: skip
            answer = Response(headed.write_csv(datetime_format="%Y-%m-%d %H:%M:%S"),
                              media_type="text/csv; charset=utf-8", headers=headers)  # fmt: skip
        elif format == "parquet":
            buffer = io.BytesIO()
            shown.write_parquet(buffer)
            answer = Response(buffer.getvalue(), media_type="application/vnd.apache.parquet",
                              headers=headers)  # fmt: skip
        else:
            answer = _json({
                "dataset": name, "title": model.title, "sponsor": token.sponsor_id,
                "snapshot": scope.snapshot.run_id, "filters": filters.describe(),
                "page": page, "page_size": size, "total_rows": rows.height, "next_page": link,
                "rows": shown.to_dicts(),
            }, headers)  # fmt: skip
        if format != "json":
            answer.headers["Content-Disposition"] = f'attachment; filename="{name}.{format}"'
        digest = hashlib.sha256(answer.body).hexdigest()
        log(request, token, filters=filters.describe(), row_count=shown.height,
            content_hash=digest, detail=f"dataset {name}, page {page}, {format}, "
            f"{len(answer.body)} bytes")  # fmt: skip
        return answer

    @api.get("/products", summary="Your products: the ids the product filter takes")
    def list_products(request: Request, token: Bearer) -> dict[str, Any]:
        scope = scopes.get(warehouse_root, token.sponsor_id)
        log(request, token)
        return {"products": products(scope).to_dicts()}

    @api.get("/measures", summary="The KPIs and counts, defined once (DOMAIN.md)")
    def list_measures(request: Request, token: Bearer) -> dict[str, Any]:
        log(request, token)
        return {"measures": [_measure(catalogue.measure(k)) for k in MEASURE_KEYS]}

    @api.get("/measures/{key}", summary="One measure for your data over a period")
    def read_measure(
        request: Request,
        key: str,
        token: Bearer,
        start: date | None = None,
        end: date | None = None,
    ) -> dict[str, Any]:
        if key not in MEASURE_KEYS:
            raise not_found()
        scope = scopes.get(warehouse_root, token.sponsor_id)
        filters = _filters(scope, start, end, [])
        inputs = scope.memo(("api-kpi-inputs",), lambda: cockpit.kpi_inputs(scope))
        today = clock.today()
        [result] = cockpit.compute_kpis(inputs, filters.start, filters.end, today,
                                        keys=(key,)).values()  # fmt: skip
        log(request, token, filters=filters.describe(), detail=f"measure {key}")
        return _measure(catalogue.measure(key)) | {
            "sponsor": token.sponsor_id, "snapshot": scope.snapshot.run_id,
            "period": {"start": filters.start.isoformat(), "end": filters.end.isoformat()},
            "today": today.isoformat(), "value": result.value, "shown": result.display(),
            "numerator": result.numerator, "denominator": result.denominator,
            "completeness": result.completeness, "reliable": result.reliable,
        }  # fmt: skip

    @api.get(
        "/decisions",
        summary="Decisions sponsors signed in the portal, for the CMO's QMS (CMO integration "
        "token only)",
    )
    def list_decisions(
        request: Request,
        token: CmoBearer,
        after: Annotated[int, Query(ge=0, description="chain position already read")] = 0,
        since: Annotated[datetime | None, Query(description="signed at or after (ISO)")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_DECISIONS)] = 100,
    ) -> Response:
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        found = decisions.page_after(after, since, limit + 1)
        shown, more = found[:limit], len(found) > limit
        next_after = shown[-1].seq if more else None
        answer = _json({
            "decisions": [decisions.outbox_record(d) for d in shown],
            "next_after": next_after,
            "next_page": str(request.url.include_query_params(after=next_after))
            if more else None,
        }, {})  # fmt: skip
        log(request, token, row_count=len(shown),
            content_hash=hashlib.sha256(answer.body).hexdigest(),
            detail=f"decisions after {after}")  # fmt: skip
        return answer

    return api


def _measure(m: catalogue.Measure) -> dict[str, Any]:
    target = None if m.target is None else {"value": m.target.value, "at_least": m.target.at_least}
    return {"key": m.key, "number": m.number, "name": m.name, "formula": m.formula,
            "source": m.source, "period_rule": m.period, "excludes": m.excludes, "unit": m.unit,
            "higher_is_better": m.higher_is_better, "completeness_rule": m.completeness,
            "target": target}  # fmt: skip


def _json(body: dict[str, Any], headers: dict[str, str]) -> Response:
    """JSON with dates and times as ISO text."""

    def default(value: Any) -> str:
        return value.isoformat() if hasattr(value, "isoformat") else str(value)

    text = json.dumps(body, default=default, separators=(",", ":"))
    headers = headers | {"ETag": hashlib.sha256(text.encode()).hexdigest()[:32]}
    return Response(text, media_type="application/json", headers=headers)
