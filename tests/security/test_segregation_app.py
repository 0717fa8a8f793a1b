"""Sponsor segregation, attacked through the real app (AppTest on portal_app.py).

ATTACKS is the table of attempts a browser can make, one data row each: URLs before sign-in,
pages outside the role, hand-made query parameters, session-state keys and widget values
carrying another sponsor's values, and short sequences (sign in after a bookmark, an access
window that ends). One interpreter plays every row against a copy of the published demo
warehouse with the demo users; each must end on the sign-in form or on the user's own sponsor
with no other sponsor's identifiers anywhere on the page. Further tests cover sign-out and
switching user, exports after sign-out and expiry, the shared scope cache, a misplaced
Parquet file, and Hypothesis inputs against every scoped named query.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import shutil
import sqlite3
from collections.abc import Callable
from contextlib import suppress
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal, NamedTuple

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Widget
from streamlit.util import calc_hash

import warehouse.queries
from etl.publish import PublishError, verify
from portal import access_log, users
from portal.navigation import PAGES
from portal.store import to_text, utc_now
from portal.users import DEMO_SPONSOR_USERS
from tests import role_matrix
from tests.browser_support import leaks
from tests.download_capture import as_text, data_rows, downloads, recording_media
from tests.ownership import ownership
from tests.page_checks import partition
from tests.page_harness import ROOT, shown_text
from warehouse import clock, layout
from warehouse.contract import TABLES
from warehouse.filters import Filters
from warehouse.scope import QueryError, Scope, ScopeError, open_sponsor_scope, sponsor_ids

OWN = {"priya": "NWT", "bruno": "CTB", "tom": "NWT"}


@pytest.fixture(scope="session")
def foreign(demo_plant) -> dict[str, set[str]]:
    """Per sponsor: what it may not see, by the source's ownership (tests/ownership.py)."""
    oracle = ownership(demo_plant.path)
    return {own: oracle.foreign(own) for own in oracle.sponsors()}


@pytest.fixture(scope="session")
def everyone(demo_plant) -> set[str]:
    oracle = ownership(demo_plant.path)
    return set().union(*(oracle.own(s) for s in oracle.sponsors()))


def app() -> AppTest:
    return AppTest.from_file(str(ROOT / "portal_app.py"), default_timeout=90).run()


def sign_in(at: AppTest, username: str, password: str | None = None) -> AppTest:
    at.text_input(key="sign_in_username").input(username)
    at.text_input(key="sign_in_password").input(password or users.demo_password(username))
    return at.button[0].click().run()


def open_url(at: AppTest, url_path: str) -> AppTest:
    """What typing https://portal/<url_path> does: the URL names the page, nothing else."""
    at.context = {"url": f"http://localhost:8501/{url_path}"}
    at._page_hash = calc_hash(url_path)  # st.Page hashes its url_path
    return at.run()


def principal_of(at: AppTest):
    return at.session_state.get("_principal")


def some(warehouse: Path, table: str, column: str, sponsor: str = "CTB") -> str:
    return partition(warehouse, table, sponsor)[column][0]


# --- the attack table -------------------------------------------------------------------------


class Foreign(NamedTuple):
    """Another sponsor's identifier: `column` of the first row of its partition of `table`."""

    table: str
    column: str
    sponsor: str = "CTB"


class PrincipalOf(NamedTuple):
    """The registry's principal of another user, as a forged session value."""

    username: str


class PasswordOf(NamedTuple):
    """Another user's demo password, as typed into a form."""

    username: str


class Step(NamedTuple):
    """What the browser does next: "open" a URL path, "click" the button with this label,
    "sign_in" as a user; or what the registry does meanwhile: "expire" a user's window."""

    action: Literal["open", "click", "sign_in", "expire"]
    target: str


# "sign_in_form": signed out, only the sign-in form. "no_page": signed out, no data at all
# (AppTest registers pages/ by file stem on every run, so a stem runs the bare script, which
# stops at current_principal(); test_side_doors checks a real server). "own_sponsor": the page
# asked for, the user's own sponsor only. "refused_page": outside the role, the role's first
# page opens instead, own sponsor only.
Outcome = Literal["sign_in_form", "no_page", "own_sponsor", "refused_page"]


class Attack(NamedTuple):
    """One attempt, in the order the interpreter plays it: sign in as `user`, forge `state`,
    open `page` with `query`, send `widgets`, take `steps`; then the page must be `expect`."""

    id: str
    user: str | None  # signed in before the attack; None: a signed-out browser
    page: str  # the URL path typed: a page's address, or a page script's file stem
    expect: Outcome
    query: dict[str, object] = {}  # query parameters in that URL
    state: dict[str, object] = {}  # session-state keys forged before it opens
    widgets: dict[str, object] = {}  # widget key -> value sent once it has rendered
    steps: tuple[Step, ...] = ()


CTB_BATCH = Foreign("batch", "batch_id")
CTB_PRODUCT = Foreign("product", "product_id")
ALL_TIME = (date(1900, 1, 1), date(2200, 1, 1))
# Pages each role may not open, as README states them (never derived from portal.navigation:
# a registry that opened every page to everyone would otherwise make these attacks vanish).
SPONSOR_ONLY = role_matrix.forbidden("sponsor_qa")
AUDITOR_ONLY = role_matrix.forbidden("auditor")
DEMO_ONLY = role_matrix.forbidden("bd_demo")
assert SPONSOR_ONLY and AUDITOR_ONLY and DEMO_ONLY
# Filter-bar prefixes of the sponsor pages (portal.widgets.dashboard_filters) and their URLs.
FILTERED = [("overview", "home"), ("batches", "batch-list"), ("batch_record", "batch-record"),
            ("deviations", "deviations-oos"), ("capa", "capa-aging")]  # fmt: skip

ATTACKS: list[Attack] = [
    *(Attack(f"signed out opens /{s.url_path}", None, s.url_path, "sign_in_form")
      for s in PAGES),
    *(Attack(f"signed out opens script {Path(s.script).stem}", None, Path(s.script).stem,
             "no_page") for s in PAGES),
    *(Attack(f"sponsor QA opens /{p}", "priya", p, "refused_page") for p in sorted(SPONSOR_ONLY)),
    *(Attack(f"auditor opens /{p}", "tom", p, "refused_page") for p in sorted(AUDITOR_ONLY)),
    *(Attack(f"bd_demo opens /{p}", "marco", p, "refused_page") for p in sorted(DEMO_ONLY)),
    Attack("expired auditor opens /batch-list", "exp-auditor", "home", "sign_in_form",
           steps=(Step("expire", "exp-auditor"), Step("open", "batch-list"))),
    Attack("?batch= another sponsor's batch", "priya", "batch-record", "own_sponsor",
           query={"batch": CTB_BATCH}),
    Attack("?sponsor=CTB", "priya", "batch-list", "own_sponsor", query={"sponsor": "CTB"}),
    Attack("?sponsor_id=CTB&product=", "priya", "home", "own_sponsor",
           query={"sponsor_id": "CTB", "product": CTB_PRODUCT}),
    Attack("?snapshot= a forged run id", "priya", "deviations-oos", "own_sponsor",
           query={"snapshot": "../../etc", "run_id": "x"}),
    Attack("bookmark /batch-list?sponsor=CTB, then sign in", None, "batch-list", "own_sponsor",
           query={"sponsor": "CTB"}, steps=(Step("sign_in", "priya"),)),
    Attack("_picked_sponsor=CTB", "priya", "batch-list", "own_sponsor",
           state={"_picked_sponsor": "CTB"}),
    Attack("_principal forged as CTB's QA", "priya", "home", "own_sponsor",
           state={"_principal": PrincipalOf("bruno")}),
    Attack("_warehouse_root forged to /", "priya", "batch-list", "own_sponsor",
           state={"_warehouse_root": "/"}),
    Attack("batch_record:batch_id = CTB batch", "priya", "batch-record", "own_sponsor",
           state={"batch_record:batch_id": CTB_BATCH}),
    *(Attack(f"{prefix}:products = CTB product", "priya", url, "own_sponsor",
             state={f"{prefix}:products": [CTB_PRODUCT]}) for prefix, url in FILTERED),
    Attack("batches:range over all time", "priya", "batch-list", "own_sponsor",
           state={"batches:range": ALL_TIME}),
    Attack("Period widget sent outside its bounds", "priya", "batch-list", "own_sponsor",
           widgets={"batches:range": ALL_TIME}),
    Attack("auditor: _picked_sponsor=CTB", "tom", "capa-aging", "own_sponsor",
           state={"_picked_sponsor": "CTB"}),
    Attack("sign-in form: CTB's QA with NWT's password", None, "home", "sign_in_form",
           widgets={"sign_in_username": "bruno", "sign_in_password": PasswordOf("priya")},
           steps=(Step("click", "Sign in"),)),
]  # fmt: skip

# Accounts rows sign in as beside the demo users, created with a one-day window that
# "expire" closes: username -> (role, sponsor, password).
WINDOWED = {"exp-auditor": ("auditor", "NWT", "auditor-password-1")}
# Where a forged row leaves the landing page first: AppTest cannot replay a rendered widget
# whose state was forged outside its options (a browser would send only its own options).
DETOUR = "tech-transfer"
WIDGETS = ("text_input", "date_input", "selectbox", "multiselect", "radio")


def resolve(value: object, warehouse: Path) -> object:
    """A row's value as the browser sends it: references looked up, containers element-wise."""
    match value:
        case Foreign(table, column, sponsor):
            return some(warehouse, table, column, sponsor)
        case PrincipalOf(username):
            return users.get_user(username).principal()
        case PasswordOf(username):
            return users.demo_password(username)
        case list() | tuple():
            return type(value)(resolve(v, warehouse) for v in value)
    return value


def open_window(username: str) -> None:
    """Open a WINDOWED account from yesterday to tomorrow, creating it the first time."""
    role, sponsor, password = WINDOWED[username]
    now = utc_now()
    if users.get_user(username) is not None:
        set_valid_until(username, now + timedelta(days=1))
        return
    window = {"valid_from": now - timedelta(days=1), "valid_until": now + timedelta(days=1)}
    users.add_user(username, username, role, password, sponsor_id=sponsor, **window)


def set_valid_until(username: str, until: datetime) -> None:
    with sqlite3.connect(layout.portal_db()) as conn:
        conn.execute(
            "UPDATE portal_user SET valid_until = ? WHERE username = ?", (to_text(until), username)
        )


def signed_in(at: AppTest, username: str) -> AppTest:
    if username in WINDOWED:
        open_window(username)
    at = sign_in(at, username, WINDOWED[username][2] if username in WINDOWED else None)
    assert principal_of(at) is not None, f"{username} could not sign in"
    return at


def widget(at: AppTest, key: str) -> Widget:
    for kind in WIDGETS:
        with suppress(KeyError):
            return getattr(at, kind)(key=key)
    raise LookupError(f"no widget {key!r} on the page")


def take(at: AppTest, step: Step) -> AppTest:
    match step:
        case Step("open", page):
            return open_url(at, page)
        case Step("click", label):
            return next(b for b in at.button if b.label == label).click().run()
        case Step("sign_in", username):
            return signed_in(at, username)
        case Step("expire", username):
            set_valid_until(username, utc_now() - timedelta(seconds=1))
            return at
    raise ValueError(f"unknown step {step}")


def interpret(attack: Attack, warehouse: Path, foreign, everyone) -> None:
    """Play one row against the real app, then check the page it ends on."""
    at = app()
    if attack.user:
        at = signed_in(at, attack.user)
    if attack.state:
        at = open_url(at, DETOUR)
        for key, value in attack.state.items():
            at.session_state[key] = resolve(value, warehouse)
    at.query_params.update({k: resolve(v, warehouse) for k, v in attack.query.items()})
    at = open_url(at, attack.page)
    for key, value in attack.widgets.items():
        widget(at, key).set_value(resolve(value, warehouse))
    # Widget values ride on the next rerun: the first step's (a form's only on its submit
    # click), or one of their own.
    for step in attack.steps:
        at = take(at, step)
    if attack.widgets and not attack.steps:
        at = at.run()

    assert not at.exception, [e.value for e in at.exception]
    text, who = shown_text(at), principal_of(at)
    if attack.expect in ("sign_in_form", "no_page"):
        assert who is None
        if attack.expect == "sign_in_form":
            assert [w.label for w in at.text_input] == ["Username", "Password"]
        assert not at.download_button and not at.dataframe and not at.metric
        leaked = leaks(text, everyone)
        assert not leaked, leaked[:5]
        return
    # The browser's user at the end: the row's, or whoever a step signed in last.
    user = next((s.target for s in reversed(attack.steps) if s.action == "sign_in"), attack.user)
    assert who is not None and who.username == user
    sponsor = OWN.get(user)
    if sponsor:  # sponsor-bound roles: own sponsor only, whatever was forged
        assert who.sponsor_id == sponsor
        leaked = leaks(text, foreign[sponsor])
        assert not leaked, leaked[:5]
    if attack.expect == "refused_page":
        title = role_matrix.first_page(who.role)
    elif attack.expect == "own_sponsor":
        page = next((s.target for s in reversed(attack.steps) if s.action == "open"), attack.page)
        title = next(t for t, row in role_matrix.MATRIX.items() if row["url"] == page)
    else:
        raise ValueError(f"unknown outcome {attack.expect!r}")
    assert at.title and title.lower() in at.title[0].value.lower(), (title, at.title)


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.id for a in ATTACKS])
def test_attack_on_the_app(portal: Path, foreign, everyone, attack: Attack) -> None:
    interpret(attack, portal, foreign, everyone)


# --- sign-out, switching user, exports --------------------------------------------------------


def _state_text(at: AppTest) -> str:
    return "\n".join(f"{k}={at.session_state[k]!r}" for k in at.session_state)


def test_sign_out_then_sign_in_as_another_sponsor_keeps_nothing(portal, foreign) -> None:
    nwt_batch, nwt_product = (
        some(portal, "batch", "batch_id", "NWT"),
        some(portal, "product", "product_id", "NWT"),
    )
    at = sign_in(app(), "priya")
    at.session_state["batches:products"] = [nwt_product]
    at = open_url(at, "batch-list")
    at.session_state["batch_record:batch_id"] = nwt_batch
    at = open_url(at, "batch-record")
    assert nwt_batch in _state_text(at)
    at.sidebar.button(key="sign_out").click().run()
    assert nwt_batch not in _state_text(at) and nwt_product not in _state_text(at)
    at = sign_in(at, "bruno")
    for page in ("batch-list", "batch-record", "home", "capa-aging"):
        at = open_url(at, page)
        assert not at.exception
        assert principal_of(at).sponsor_id == "CTB"
        text, state = shown_text(at), _state_text(at)
        assert not leaks(text, foreign["CTB"]), page
        assert nwt_batch not in state and nwt_product not in state, page
        widgets = [w.value for w in (*at.selectbox, *at.multiselect)]
        assert nwt_batch not in repr(widgets) and nwt_product not in repr(widgets)


def _exports(username: str) -> int:
    with sqlite3.connect(layout.portal_db()) as conn:
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM access_log WHERE username = ? AND event = 'EXPORT'",
            (username,),
        ).fetchone()
    return count


def test_no_export_after_sign_out(portal) -> None:
    at = open_url(sign_in(app(), "bruno"), "batch-list")
    assert at.download_button
    before = _exports("bruno")
    at.sidebar.button(key="sign_out").click().run()
    assert principal_of(at) is None and not at.download_button
    at = open_url(at, "batch-list")
    assert principal_of(at) is None and not at.download_button and not at.dataframe
    assert _exports("bruno") == before


def test_no_export_after_the_auditor_window_ends(portal) -> None:
    now = utc_now()
    users.add_user("exp-exporter", "Export Auditor", "auditor", "auditor-password-1",
                   sponsor_id="NWT", valid_from=now - timedelta(days=1),
                   valid_until=now + timedelta(days=1))  # fmt: skip
    at = open_url(sign_in(app(), "exp-exporter", "auditor-password-1"), "batch-list")
    stale = at.download_button[0]
    with sqlite3.connect(layout.portal_db()) as conn:
        conn.execute("UPDATE portal_user SET valid_until = ? WHERE username = 'exp-exporter'",
                     (to_text(utc_now() - timedelta(seconds=1)),))  # fmt: skip
    stale.click().run()
    assert principal_of(at) is None and not at.download_button
    assert _exports("exp-exporter") == 0


def test_export_with_tampered_filters_holds_only_own_rows(portal, foreign) -> None:
    """The export is the page's own frame: forged filter keys cannot widen it."""
    before = _exports("priya")
    with recording_media() as made:
        at = sign_in(app(), "priya")
        at.session_state["batches:products"] = [some(portal, "product", "product_id", "CTB")]
        at.query_params.update({"sponsor": "CTB"})
        at = open_url(at, "batch-list")
        files = [d.fetch() for d in downloads(at, made, "batch-list")]  # as the browser does
    frames = "\n".join(f.value.to_csv(index=False) for f in at.dataframe)
    assert frames and not leaks(frames, foreign["NWT"])
    exported = "\n".join(as_text(f) for f in files)
    assert exported and not leaks(exported, foreign["NWT"])
    assert _exports("priya") == before + len(files) == before + 2


# --- the shared scope cache ---------------------------------------------------------------------


def _named_queries() -> list[Callable]:
    """Every named query taking (scope, filters, ...), from every warehouse.queries module."""
    found = []
    for info in pkgutil.iter_modules(warehouse.queries.__path__):
        module = importlib.import_module(f"warehouse.queries.{info.name}")
        for _, function in inspect.getmembers(module, inspect.isfunction):
            params = list(inspect.signature(function).parameters.values())
            if (
                function.__module__ == module.__name__
                and len(params) >= 2
                and params[0].annotation in (Scope, "Scope")
                and params[1].annotation in (Filters, "Filters")
            ):
                found.append(function)
    return found


NAMED_QUERIES = _named_queries()


def _call(query: Callable, scope: Scope, filters: Filters) -> pl.DataFrame | None:
    extra = {}
    for name, param in list(inspect.signature(query).parameters.items())[2:]:
        if param.default is inspect.Parameter.empty:
            extra[name] = clock.today() if name == "today" else ()
    result = query(scope, filters, **extra)
    return result if isinstance(result, pl.DataFrame) else None


KEYS = {t.key: t.name for t in TABLES}


def _foreign_keys(warehouse: Path, sponsor: str, frame: pl.DataFrame) -> list[str]:
    """Values of key columns in `frame` that are not in `sponsor`'s partition of their table."""
    bad = []
    for column in frame.columns:
        table = KEYS.get(column)
        if table is None or column == "sponsor_id":
            continue
        own = set(partition(warehouse, table, sponsor)[column].to_list())
        bad += [v for v in frame[column].drop_nulls().unique().to_list() if v not in own]
    return bad


def test_the_cached_scope_gives_two_sponsors_disjoint_results(portal) -> None:
    """portal.context._scope is process-wide: identical filters, different sponsors."""
    from portal.context import _scope

    info_run = (portal / "current").resolve().name
    nwt = _scope(str(portal), info_run, "NWT")
    ctb = _scope(str(portal), info_run, "CTB")
    assert nwt is not ctb and (nwt.sponsor_id, ctb.sponsor_id) == ("NWT", "CTB")
    filters = Filters(start=date(2000, 1, 1), end=clock.today() + timedelta(days=365))
    assert NAMED_QUERIES, "no named queries found"
    for query in NAMED_QUERIES:
        a, b = _call(query, nwt, filters), _call(query, ctb, filters)
        if a is None:
            continue
        assert not _foreign_keys(portal, "NWT", a), query.__qualname__
        assert not _foreign_keys(portal, "CTB", b), query.__qualname__
        for column in set(a.columns) & set(KEYS) - {"sponsor_id"}:
            # Site-level rows fan out with a partition each; the key alone may repeat.
            if KEYS[column] in {"sponsor", "batch", "product", "deviation", "capa"}:
                shared = set(a[column].to_list()) & set(b[column].to_list())
                assert not shared, (query.__qualname__, column)


# --- hostile inputs against every named query (Hypothesis) --------------------------------------


HOSTILE_SPONSORS = st.one_of(
    st.sampled_from(["NWT", "CTB"]),
    st.text(max_size=24),
    st.sampled_from(
        [
            "NWT/",
            "../CTB",
            "NWT/../CTB",
            "*",
            "NWT*",
            "SITE",
            "nwt",
            "CTB\x00",
            "NWT' OR '1'='1",
            "sponsor_id=CTB",
            "NWT ",
            "",
        ]
    ),  # fmt: skip
)


@pytest.fixture(scope="module")
def scopes(demo_data_root: Path):
    warehouse = demo_data_root / "demo" / "warehouse"
    opened = {s: open_sponsor_scope(warehouse, s) for s in ("NWT", "CTB")}
    yield opened
    for scope in opened.values():
        scope.close()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    sponsor=HOSTILE_SPONSORS,
    products=st.lists(st.one_of(st.text(max_size=16), st.sampled_from(["P-NWT-01", "P-CTB-01"]))),
    start=st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 1, 1)),
    span=st.integers(min_value=-400, max_value=40000),
)
def test_named_queries_return_only_the_scopes_rows(
    demo_data_root: Path, scopes, sponsor: str, products: list[str], start: date, span: int
) -> None:
    warehouse = demo_data_root / "demo" / "warehouse"
    try:
        scope = scopes.get(sponsor) or open_sponsor_scope(warehouse, sponsor)
    except ScopeError as refused:
        assert str(refused) == "Unknown sponsor."
        return
    assert sponsor in scopes, f"a scope opened for {sponsor!r}"
    end = min(start + timedelta(days=span), date(2200, 1, 1))
    filters = Filters(start=start, end=end, products=tuple(products))
    for query in NAMED_QUERIES:
        try:
            frame = _call(query, scope, filters)
        except QueryError as failed:
            message = str(failed)
            assert "/" not in message and "CTB" not in message and "NWT" not in message
            continue
        if frame is not None:
            assert not _foreign_keys(warehouse, sponsor, frame), query.__qualname__


# --- a misplaced Parquet file (a bad ETL run) ---------------------------------------------------


@pytest.fixture
def damaged(demo_warehouse: Path, tmp_path: Path) -> Path:
    """A copy of the published demo warehouse, as a bad run could leave it."""
    copy = tmp_path / "wh"
    shutil.copytree(demo_warehouse, copy, symlinks=True)
    return copy


def _files(snapshot: Path) -> dict:
    import json

    return json.loads((snapshot / layout.MANIFEST).read_text())["files"]


def test_misplaced_file_replacing_a_partition_is_caught_by_publish_and_read(damaged) -> None:
    snapshot = layout.current_snapshot(damaged)
    verify(snapshot, _files(snapshot))  # the undamaged copy passes
    nwt = layout.partition_dir(snapshot, "batch", "NWT") / "part-0.parquet"
    shutil.copy(layout.partition_dir(snapshot, "batch", "CTB") / "part-0.parquet", nwt)
    with pytest.raises(PublishError, match="does not match its directory"):
        verify(snapshot, _files(snapshot))
    with pytest.raises(ScopeError, match="integrity") as refused:
        open_sponsor_scope(damaged, "NWT")
    assert "CTB" not in str(refused.value) and "/" not in str(refused.value)


def test_extra_file_in_a_partition_is_caught_by_publish_and_read(damaged) -> None:
    snapshot = layout.current_snapshot(damaged)
    stray = layout.partition_dir(snapshot, "deviation", "NWT") / "part-1.parquet"
    shutil.copy(layout.partition_dir(snapshot, "deviation", "CTB") / "part-0.parquet", stray)
    with pytest.raises(PublishError):
        verify(snapshot, _files(snapshot))
    with pytest.raises(ScopeError, match="integrity"):
        open_sponsor_scope(damaged, "NWT")


def test_misplaced_file_is_never_shown_in_the_app(damaged, portal, monkeypatch, foreign) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(damaged.parent))
    users_db = portal.parent.parent / layout.portal_db().name
    shutil.copy(users_db, layout.portal_db())
    layout.demo_warehouse().parent.mkdir(parents=True, exist_ok=True)
    damaged.rename(layout.demo_warehouse())
    snapshot = layout.current_snapshot(layout.demo_warehouse())
    shutil.copy(layout.partition_dir(snapshot, "batch", "CTB") / "part-0.parquet",
                layout.partition_dir(snapshot, "batch", "NWT") / "part-0.parquet")  # fmt: skip
    at = open_url(sign_in(app(), "priya"), "batch-list")
    assert not at.exception
    assert "integrity check" in " ".join(e.value for e in at.error)
    text = shown_text(at)
    assert not leaks(text, foreign["NWT"])
    assert not at.dataframe and not at.download_button


@pytest.mark.parametrize("table", [t.name for t in TABLES])
def test_a_published_scope_cannot_read_another_partition(
    demo_data_root: Path, scopes, table
) -> None:
    """On the real published layout: NWT's instance cannot open CTB's file of any table."""
    import duckdb

    other = layout.partition_dir(layout.current_snapshot(demo_data_root / "demo" / "warehouse"),
                                 table, "CTB")  # fmt: skip
    for sql in (f"SELECT * FROM read_parquet('{other}/*.parquet')",
                f"SELECT * FROM read_parquet('{other.parent}/*/*.parquet')"):  # fmt: skip
        with pytest.raises(duckdb.Error, match="Permission"):
            scopes["NWT"]._cursor().sql(sql).fetchall()


# --- CMO staff's views of a sponsor's data, in that sponsor's access log ----------------------


def _carla_in(sponsor: str, since: datetime, until: datetime) -> list[tuple[str, str]]:
    entries = access_log.entries_for_sponsor(sponsor, since, until)
    return [(e["event"], e["page"]) for e in entries if e["username"] == "carla"]


def test_cmo_views_and_exports_are_logged_for_that_sponsor_only(portal) -> None:
    """CMO quality opens Batches on the first sponsor, picks another and exports: each
    sponsor's log holds exactly the views and exports of its own data, no other sponsor's log
    holds any, and the sponsor's QA reads them on its Access log page."""
    since = utc_now() - timedelta(seconds=1)
    choices = sponsor_ids(portal)
    first, second = choices[0], choices[1]
    with recording_media() as made:
        at = open_url(sign_in(app(), "carla"), "batch-list")
        assert not at.exception
        (picker,) = [box for box in at.selectbox if box.label == "Sponsor"]
        assert picker.value == first
        at = picker.select(second).run()
        assert not at.exception
        files = [d.fetch() for d in downloads(at, made, "batch-list")]
        at = open_url(at, "qa-agreement-compliance")  # every sponsor's: logged without one
        assert not at.exception
    until = utc_now() + timedelta(seconds=1)
    assert len(files) == 2 and all(data_rows(f) for f in files)
    assert _carla_in(first, since, until) == [("PAGE_VIEW", "batch-list")]
    assert sorted(_carla_in(second, since, until)) == [
        ("EXPORT", "batches"), ("EXPORT", "batches"), ("PAGE_VIEW", "batch-list"),
    ]  # fmt: skip
    for other in choices[2:]:
        assert _carla_in(other, since, until) == [], other
    # No sponsor-less copy of a sponsor page's view; the cockpit (site-wide) stays sponsor-less.
    with sqlite3.connect(layout.portal_db()) as conn:
        own = conn.execute(
            "SELECT event, page, sponsor_id FROM access_log WHERE username = 'carla' AND at >= ?",
            (to_text(since),),
        ).fetchall()
    assert ("PAGE_VIEW", "batch-list", None) not in own
    assert ("PAGE_VIEW", "management-cockpit", None) in own
    assert ("PAGE_VIEW", "qa-agreement-compliance", None) in own

    # The second sponsor's QA reads them; the first sponsor's QA reads only its own view.
    qa = {sponsor: user for user, _, role, sponsor in DEMO_SPONSOR_USERS if role == "sponsor_qa"}
    for sponsor, expected in ((second, 3), (first, 1)):
        at = open_url(sign_in(app(), qa[sponsor]), "access-log")
        assert not at.exception
        (log,) = [f.value for f in at.dataframe if "carla" in f.value.to_csv(index=False)]
        assert len([row for row in log.to_csv(index=False).splitlines() if "carla" in row]) == (
            expected
        ), sponsor
