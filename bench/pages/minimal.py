"""Baseline (a): the floor of Streamlit itself - one query, one table, one chart."""

from bench.pages.content import minimal_content
from portal.context import sponsor_scope

minimal_content(sponsor_scope(), "Minimal page")
