"""Load the dashboards' browser code while a person types their password.

Streamlit's frontend loads the code of an element the first time a page shows one: the
Plotly chart alone is 4.7 MB of JavaScript, which Chromium fetches, compiles and runs after
the click on "Sign in", between the end of the overview's script run and its first chart.
The sign-in page imports those modules into the page ahead of time (the same URLs the
frontend imports them from, so its own import finds them loaded): headless Chromium on this
machine, Streamlit alone, "Sign in" to settled page 1.68 s → 0.52 s (median of 6, warm cache).

Only Streamlit's own static files are named, found by their element's name in the installed
Streamlit; nothing here depends on who signs in.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import streamlit as st

# The elements the dashboards draw with (their module's name before the content hash).
ELEMENTS = (
    "PlotlyChart",
    "DataFrame",
    "Multiselect",
    "Selectbox",
    "DateInput",
    "Metric",
    "Button",
    "DownloadButton",
    "PageLink",
)
STATIC = Path(st.__file__).parent / "static" / "static"

# Imports each module; adds each stylesheet once, by its absolute URL, which is how the
# frontend's own loader looks for one already in the page before adding it.
SCRIPT = """<script>
for (const url of %(modules)s) import(url).catch(() => {});
for (const url of %(styles)s) {
    const href = new URL(url, document.baseURI).href;
    if (!document.querySelector(`link[rel="stylesheet"][href="${href}"]`)) {
        const link = document.createElement('link');
        link.rel = 'stylesheet';
        link.href = href;
        document.head.appendChild(link);
    }
}
</script>"""


def _files(kind: str) -> tuple[str, ...]:
    found = []
    for element in ELEMENTS:
        files = sorted((STATIC / kind).glob(f"{element}.*.{kind}"))
        if len(files) == 1:  # ambiguous or missing (another Streamlit): not guessed
            found.append(f"./static/{kind}/{files[0].name}")
    return tuple(found)


@cache
def modules() -> tuple[str, ...]:
    """The installed Streamlit's module file of each element, relative to the app's URL."""
    return _files("js")


@cache
def stylesheets() -> tuple[str, ...]:
    """The elements' own stylesheets (the table has one), relative to the app's URL."""
    return _files("css")


def preload() -> None:
    """Ask the browser to load the dashboards' modules now; failure changes nothing."""
    if not modules():
        return
    literal = {name: json.dumps(list(urls)).replace("<", "\\u003c")
               for name, urls in (("modules", modules()), ("styles", stylesheets()))}  # fmt: skip
    st.html(SCRIPT % literal, unsafe_allow_javascript=True)
