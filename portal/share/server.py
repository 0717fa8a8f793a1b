"""The sharing server: the Delta Sharing protocol (PROTOCOL.md of delta-io/delta-sharing,
"parquet" response format) over each sponsor's partition of the current snapshot.

Every request carries a bearer token; the token alone names the sponsor (portal.tokens), so a
request can only ever reach that sponsor's share. Anything else (another sponsor's share, a
table that does not exist, a file outside the partition) is the same 404. File URLs are the
server's own, signed and short-lived (portal.share.signing). Each call and each file fetched
is written to the access log with the token's sponsor, so that sponsor's QA sees it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from portal import access_log, tokens
from portal.share import api, signing
from portal.share.errors import NOT_FOUND, Bearer, ShareError
from portal.share.errors import not_found as _not_found
from portal.share.tables import (
    SCHEMA,
    TABLE_NAMES,
    SharedFile,
    SponsorShare,
    file_id,
    schema_string,
    sponsor_share,
    table_id,
)
from portal.store import StoreUnavailable, utc_now
from warehouse.scope import DataUnavailable, ScopeError

PREFIX = "/delta-sharing"
NDJSON = "application/x-ndjson; charset=utf-8"
MAX_PAGE = 500


def _page(items: list[dict], max_results: int | None, page_token: str | None) -> dict:
    """One page of `items` (PROTOCOL.md: maxResults, pageToken, nextPageToken)."""
    start = 0
    if page_token:
        try:
            start = int(base64.urlsafe_b64decode(page_token.encode()).decode())
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise ShareError(400, "INVALID_PARAMETER_VALUE", "pageToken is not one this "
                             "server issued.") from None  # fmt: skip
        if start < 0:
            raise ShareError(400, "INVALID_PARAMETER_VALUE", "pageToken is not valid.")
    if max_results is not None and max_results < 0:
        raise ShareError(400, "INVALID_PARAMETER_VALUE", "maxResults must not be negative.")
    size = MAX_PAGE if max_results is None else min(max_results, MAX_PAGE)
    body: dict[str, Any] = {"items": items[start : start + size]}
    if start + size < len(items):
        body["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return body


def _ndjson(lines: Iterable[dict], version: int) -> Response:
    text = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
    return Response(text, media_type=NDJSON, headers={"delta-table-version": str(version)})


def create_app(warehouse_root: Path | str) -> FastAPI:
    """The sharing server over one warehouse root (stateless: run as many copies as needed)."""
    app = FastAPI(
        title="Sponsor Portal data share",
        description="Each sponsor's own quality data, by the Delta Sharing protocol.",
        version="1",
    )
    key = signing.signing_key()

    @app.exception_handler(ShareError)
    async def _share_error(_: Request, error: ShareError) -> JSONResponse:
        return JSONResponse({"errorCode": error.code, "message": error.message}, error.status)

    @app.exception_handler(StoreUnavailable)
    @app.exception_handler(DataUnavailable)
    async def _store_down(_: Request, error: Exception) -> JSONResponse:
        # The portal's database (no token can be checked) or the object store is down: no
        # answer but this one; the client retries later.
        body = {"errorCode": "TEMPORARILY_UNAVAILABLE", "message": str(error)}
        return JSONResponse(body, 503, headers={"Retry-After": "60"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}"
            for e in error.errors()
        )
        return JSONResponse({"errorCode": "INVALID_PARAMETER_VALUE", "message": problems}, 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = "RESOURCE_DOES_NOT_EXIST" if error.status_code == 404 else "INVALID_REQUEST"
        message = NOT_FOUND[1] if error.status_code == 404 else str(error.detail)
        return JSONResponse({"errorCode": code, "message": message}, error.status_code)

    def share_of(token: tokens.Token) -> SponsorShare:
        try:
            share = sponsor_share(warehouse_root, token.sponsor_id)
        except DataUnavailable:
            raise
        except ScopeError:
            # An integrity check failed, or the live run cannot be named (a damaged pointer).
            raise api.unavailable() from None
        if share is None:
            raise _not_found()
        return share

    def own_share(share: str, token: tokens.Token) -> SponsorShare:
        if share.lower() != token.sponsor_id.lower():
            raise _not_found()
        return share_of(token)

    def own_table(share: str, schema: str, table: str, token: tokens.Token) -> SponsorShare:
        found = own_share(share, token)
        if schema.lower() != SCHEMA or table.lower() not in TABLE_NAMES:
            raise _not_found()
        return found

    def log(request: Request, token: tokens.Token, **fields: Any) -> None:
        access_log.record_api("API_REQUEST", token, page=request.url.path, **fields)

    def share_item(token: tokens.Token) -> dict:
        return {"name": token.sponsor_id, "id": table_id(token.sponsor_id, "")}

    def table_item(token: tokens.Token, table: str) -> dict:
        return {"name": table, "schema": SCHEMA, "share": token.sponsor_id,
                "shareId": table_id(token.sponsor_id, ""),
                "id": table_id(token.sponsor_id, table)}  # fmt: skip

    @app.get(f"{PREFIX}/shares")
    def list_shares(
        request: Request,
        *,
        maxResults: int | None = None,  # noqa: N803 (the protocol's names)
        pageToken: str | None = None,  # noqa: N803
        token: Bearer,
    ) -> dict:
        share_of(token)
        log(request, token)
        return _page([share_item(token)], maxResults, pageToken)

    @app.get(f"{PREFIX}/shares/{{share}}")
    def get_share(request: Request, share: str, token: Bearer) -> dict:
        own_share(share, token)
        log(request, token)
        return {"share": share_item(token)}

    @app.get(f"{PREFIX}/shares/{{share}}/schemas")
    def list_schemas(
        request: Request,
        share: str,
        *,
        maxResults: int | None = None,  # noqa: N803
        pageToken: str | None = None,  # noqa: N803
        token: Bearer,
    ) -> dict:
        own_share(share, token)
        log(request, token)
        return _page([{"name": SCHEMA, "share": token.sponsor_id}], maxResults, pageToken)

    @app.get(f"{PREFIX}/shares/{{share}}/schemas/{{schema}}/tables")
    def list_tables(
        request: Request,
        share: str,
        schema: str,
        *,
        maxResults: int | None = None,  # noqa: N803
        pageToken: str | None = None,  # noqa: N803
        token: Bearer,
    ) -> dict:
        if schema.lower() != SCHEMA:
            own_share(share, token)
            raise _not_found()
        return list_all_tables(request, share, maxResults=maxResults, pageToken=pageToken,
                               token=token)  # fmt: skip

    @app.get(f"{PREFIX}/shares/{{share}}/all-tables")
    def list_all_tables(
        request: Request,
        share: str,
        *,
        maxResults: int | None = None,  # noqa: N803
        pageToken: str | None = None,  # noqa: N803
        token: Bearer,
    ) -> dict:
        own_share(share, token)
        log(request, token)
        items = [table_item(token, t) for t in TABLE_NAMES]
        return _page(items, maxResults, pageToken)

    version_path = f"{PREFIX}/shares/{{share}}/schemas/{{schema}}/tables/{{table}}/version"

    @app.head(version_path, operation_id="head_table_version")
    @app.get(version_path, operation_id="get_table_version")
    def table_version(
        request: Request, share: str, schema: str, table: str,
        token: Bearer,
    ) -> Response:  # fmt: skip
        found = own_table(share, schema, table, token)
        log(request, token)
        return Response(headers={"delta-table-version": str(found.version)})

    @app.head(f"{PREFIX}/shares/{{share}}/schemas/{{schema}}/tables/{{table}}")
    def table_version_deprecated(
        request: Request, share: str, schema: str, table: str,
        token: Bearer,
    ) -> Response:  # fmt: skip
        return table_version(request, share, schema, table, token)

    def metadata(found: SponsorShare, table: str) -> list[dict]:
        files = found.files[table]
        return [
            {"protocol": {"minReaderVersion": 1}},
            {"metaData": {
                "id": table_id(found.sponsor_id, table), "name": table,
                "format": {"provider": "parquet"},
                "schemaString": schema_string(found, table), "partitionColumns": [],
                "size": sum(f.size for f in files), "numFiles": len(files),
            }},
        ]  # fmt: skip

    @app.get(f"{PREFIX}/shares/{{share}}/schemas/{{schema}}/tables/{{table}}/metadata")
    def table_metadata(
        request: Request, share: str, schema: str, table: str,
        token: Bearer,
    ) -> Response:  # fmt: skip
        found = own_table(share, schema, table, token)
        log(request, token, detail=f"table {table.lower()}")
        return _ndjson(metadata(found, table.lower()), found.version)

    def file_action(request: Request, token: tokens.Token, file: SharedFile, now: float) -> dict:
        expires = int(now) + signing.URL_LIFETIME_SECONDS
        part = file.name.rsplit("/", 1)[-1]
        name = f"{file.table}/{part}"
        sig = signing.signature(key, token.token_id, name, expires)
        base = str(request.base_url).rstrip("/")
        url = (f"{base}{PREFIX}/files/{quote(token.token_id)}/{quote(file.table)}/"
               f"{quote(part)}?expires={expires}&signature={sig}")  # fmt: skip
        return {"file": {
            "url": url, "id": file_id(file), "partitionValues": {}, "size": file.size,
            "stats": json.dumps({"numRecords": file.rows}), "expirationTimestamp": expires * 1000,
        }}  # fmt: skip

    @app.post(f"{PREFIX}/shares/{{share}}/schemas/{{schema}}/tables/{{table}}/query")
    def query_table(
        request: Request, share: str, schema: str, table: str, token: Bearer,
        body: Annotated[dict[str, Any] | None, Body()] = None,
    ) -> Response:  # fmt: skip
        found = own_table(share, schema, table, token)
        body = body or {}
        if body.get("startingVersion") is not None or body.get("timestamp") is not None:
            raise ShareError(400, "INVALID_PARAMETER_VALUE", "Only the current snapshot is "
                             "shared: history and change data feed are not.")  # fmt: skip
        version = body.get("version")
        if version is not None and version != found.version:
            raise ShareError(400, "INVALID_PARAMETER_VALUE", f"Only version {found.version} "
                             "(the current snapshot) is shared.")  # fmt: skip
        now = time.time()
        name = table.lower()
        files = found.files[name]
        lines = [*metadata(found, name), *(file_action(request, token, f, now) for f in files)]
        log(request, token, row_count=sum(f.rows for f in files), detail=f"table {name}, "
            f"{len(files)} file(s) listed, snapshot {found.snapshot.run_id}")  # fmt: skip
        return _ndjson(lines, found.version)

    file_path = f"{PREFIX}/files/{{token_id}}/{{table}}/{{part}}"

    @app.head(file_path, operation_id="head_file")
    @app.get(file_path, operation_id="get_file")
    def fetch_file(
        request: Request, token_id: str, table: str, part: str, expires: int = 0,
        signature: str = "",
    ) -> Response:  # fmt: skip
        name = f"{table}/{part}"
        if not signing.valid(key, token_id, name, expires, signature, time.time()):
            raise ShareError(403, "PERMISSION_DENIED", "This file link is not valid or has "
                             "expired; query the table again for a fresh one.")  # fmt: skip
        token = tokens.get(token_id)
        if token is None or not token.live(utc_now()) or token.cmo_integration:
            raise ShareError(401, "UNAUTHENTICATED", "The token this link was issued to is "
                             "expired or revoked.")  # fmt: skip
        found = share_of(token)
        wanted = f"{table}/sponsor_id={token.sponsor_id}/{part}"
        file = next((f for f in found.files.get(table, []) if f.name == wanted), None)
        if file is None:
            raise _not_found()
        if request.method == "GET" and "range" not in request.headers:
            access_log.record_api("FILE_FETCH", token, page=request.url.path,
                                  row_count=file.rows, content_hash=file.sha256,
                                  detail=f"table {table}, {file.size} bytes")  # fmt: skip
        if not found.on_s3:
            return FileResponse(found.path(file), media_type="application/octet-stream")
        return _object_response(request, found.open(file), file.size)

    app.include_router(api.router(warehouse_root))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


CHUNK = 1 << 20
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def _object_response(request: Request, source: Any, size: int) -> Response:
    """A file read from S3, as FileResponse answers a local one: HEAD, the whole file, or one
    byte range (206). A multi-range or unsatisfiable request gets the whole file or 416."""
    headers = {"accept-ranges": "bytes", "content-type": "application/octet-stream"}
    if request.method == "HEAD":
        source.close()
        return Response(headers=headers | {"content-length": str(size)})
    start, end = 0, size - 1
    wanted = _RANGE.fullmatch(request.headers.get("range", "").strip())
    if wanted and any(wanted.groups()):
        first, last = wanted.groups()
        if first:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        else:
            start = max(0, size - int(last))
        if start > end or start >= size:
            source.close()
            return Response(status_code=416, headers={"content-range": f"bytes */{size}"})
        headers["content-range"] = f"bytes {start}-{end}/{size}"

    def chunks() -> Iterable[bytes]:
        try:
            at = start
            while at <= end:
                part = source.read_at(min(CHUNK, end + 1 - at), at)
                if not part:
                    return
                yield part
                at += len(part)
        finally:
            source.close()

    return StreamingResponse(
        chunks(), status_code=206 if "content-range" in headers else 200,
        headers=headers | {"content-length": str(end + 1 - start)},
    )  # fmt: skip


ERROR_SCHEMA = {
    "type": "object", "required": ["errorCode", "message"],
    "properties": {"errorCode": {"type": "string"}, "message": {"type": "string"}},
}  # fmt: skip
ERRORS = {
    "400": "The request is malformed (a parameter out of range, a date, an unknown product).",
    "401": "The bearer token is missing, unknown, expired or revoked.",
    "404": "Not found, or not shared with this token (the same answer for both).",
    "503": "The sponsor's data is not available from the published snapshot now.",
}
# What each kind of operation answers with 200, by the path's ending.
CONTENT = {
    "/metadata": {"application/x-ndjson": {"schema": {"type": "string"}}},
    "/query": {"application/x-ndjson": {"schema": {"type": "string"}}},
    "/datasets/{name}": {
        "application/json": {"schema": {"type": "object"}},
        "text/csv": {"schema": {"type": "string"}},
        "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
    },
    "/{part}": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document as the server answers: every refusal in the one error shape
    (never FastAPI's 422: validation errors are 400), and each body's real media type."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)  # fmt: skip
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    components["Error"] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            responses = operation["responses"]
            responses.pop("422", None)
            for code, text in ERRORS.items():
                responses[code] = {"description": text, "content": error}
            if "/files/" in path:
                responses["403"] = {"description": "The file link is not valid or has expired.",
                                    "content": error}  # fmt: skip
            ok = responses.setdefault("200", {"description": "OK"})
            ending = next((e for e in CONTENT if path.endswith(e)), None)
            if ending is not None:
                ok["content"] = CONTENT[ending]
            elif path.endswith("/version"):
                ok.pop("content", None)
    app.openapi_schema = schema
    return schema
