"""The sponsor data share (DESIGN.md, Sponsor data share): a stateless server speaking the
Delta Sharing protocol ("parquet" response format) over the published snapshots.

- `tables`: a sponsor's tables of the current snapshot, their version, schema and files;
- `signing`: short-lived signed file URLs bound to one token (and so one sponsor);
- `server`: the FastAPI application (`create_app`), started by `python -m warehouse share`.

The sponsor comes from the bearer token only (portal.tokens); nothing in a request names it.
"""
