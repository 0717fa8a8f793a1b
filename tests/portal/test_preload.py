"""The sign-in page's preload names modules the installed Streamlit really ships."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from portal import preload


def test_every_element_has_exactly_one_module_in_this_streamlit() -> None:
    # A Streamlit upgrade that renames or splits an element's module must fail here, not
    # silently preload nothing (the sign-in figure would regress without a word).
    assert len(preload.modules()) == len(preload.ELEMENTS)
    static = preload.STATIC
    for url in (*preload.modules(), *preload.stylesheets()):
        assert url.startswith("./static/")
        assert (static / url.removeprefix("./static/")).is_file()
    assert preload.stylesheets() == ("./static/css/" + next(
        path.name for path in (static / "css").glob("DataFrame.*.css")),)  # fmt: skip
    assert static.is_relative_to(Path(st.__file__).parent)
