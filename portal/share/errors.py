"""The data share's answers other than 200 (the Delta Sharing error shape, used by the REST
API too) and its one authentication: a bearer token, which alone names the sponsor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from portal import tokens


class ShareError(Exception):
    """An answer other than 200: {"errorCode": ..., "message": ...}."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "Not found, or not shared with this token.")


def not_found() -> ShareError:
    """The one answer for anything of another sponsor and for anything that does not exist."""
    return ShareError(404, *NOT_FOUND)


_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="Data-share token",
    description="The bearerToken of your profile file (python -m portal tokens create).",
)


def _authenticated(credentials: HTTPAuthorizationCredentials | None) -> tokens.Token:
    token = tokens.authenticate(credentials.credentials) if credentials else None
    if token is None:
        raise ShareError(401, "UNAUTHENTICATED", "The bearer token is missing, unknown, "
                         "expired or revoked.")  # fmt: skip
    return token


def _bearer(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_scheme)],
) -> tokens.Token:
    """A sponsor's token: the only one any share, table, dataset or measure answers."""
    token = _authenticated(credentials)
    if token.cmo_integration:
        raise ShareError(403, "PERMISSION_DENIED", "A CMO integration token reads decisions "
                         "only; sponsor data needs a sponsor's token.")  # fmt: skip
    return token


def _cmo_bearer(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_scheme)],
) -> tokens.Token:
    """A CMO integration token (python -m portal tokens create --cmo-integration)."""
    token = _authenticated(credentials)
    if not token.cmo_integration:
        raise ShareError(403, "PERMISSION_DENIED", "Decisions are read by the CMO's "
                         "integration token only.")  # fmt: skip
    return token


Bearer = Annotated[tokens.Token, Depends(_bearer)]
CmoBearer = Annotated[tokens.Token, Depends(_cmo_bearer)]
