"""Named queries of the dashboards: readable SQL beside the function that runs it.

Every function takes a Scope (the confined DuckDB instance) and bound parameters; none
builds a path or formats a value into SQL.
"""
