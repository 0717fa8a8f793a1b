"""Sponsor segregation, attacked through the real app (AppTest on portal_app.py).

ATTACKS is the table of attempts a browser can make: URLs before sign-in, pages outside the
role, hand-made query parameters, session-state and widget keys carrying another sponsor's
values. Every row runs against a copy of the published demo warehouse with the demo users,
and must end on the sign-in form or on the user's own sponsor with no other sponsor's
identifiers anywhere on the page. Further tests cover sign-out and switching user, exports
after sign-out and expiry, the shared scope cache, a misplaced Parquet file, and Hypothesis
inputs against every scoped named query.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import shutil
import sqlite3
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

import warehouse.queries
from etl.publish import PublishError, verify
from portal import users
from portal.navigation import PAGES
from portal.store import to_text, utc_now
from tests import role_matrix
from tests.browser_support import leaks
from tests.ownership import ownership
from tests.page_checks import partition
from tests.page_harness import ROOT, shown_text
from warehouse import clock, layout
from warehouse.contract import TABLES
from warehouse.filters import Filters
from warehouse.scope import QueryError, Scope, ScopeError, open_sponsor_scope

OWN = {"priya": "NWT", "bruno": "CTB", "tom": "NWT"}


@pytest.fixture(scope="session")
def data_root(tmp_path_factory, demo_warehouse: Path) -> Path:
    """A data root with the demo users and a copy of the published demo warehouse."""
    root = tmp_path_factory.mktemp("segregation-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(root))
        users.ensure_demo_users()
        shutil.copytree(demo_warehouse, layout.demo_warehouse(), symlinks=True)
    return root


@pytest.fixture
def portal(data_root: Path, monkeypatch) -> Path:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(data_root))
    monkeypatch.setenv("PORTAL_BOOTSTRAP", "off")
    for name in ("PORTAL_MODE", "PORTAL_COOKIE_KEY", "PORTAL_IDLE_MINUTES"):
        monkeypatch.delenv(name, raising=False)
    return data_root / "demo" / "warehouse"


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


def open_script(at: AppTest, stem: str) -> AppTest:
    """Streamlit's pages/ auto-discovery: a page addressed by its file stem."""
    return open_url(at, stem)


def principal_of(at: AppTest):
    return at.session_state.get("_principal")


def some(warehouse: Path, table: str, column: str, sponsor: str = "CTB") -> str:
    return partition(warehouse, table, sponsor)[column][0]


# --- the attack table -------------------------------------------------------------------------


class Attack(NamedTuple):
    name: str
    user: str | None  # signed in before the attack; None: a signed-out browser
    act: Callable[[AppTest, Path], AppTest]
    # "sign-in": only the sign-in form; "own": the user's own sponsor only; "nothing": no data
    # at all (AppTest registers pages/ by file stem on every run, so a stem runs the bare
    # script, which stops at current_principal(); test_side_doors checks a real server).
    expect: str


def _set_state(key: str, value: Callable[[Path], object], page: str) -> Callable:
    def act(at: AppTest, warehouse: Path) -> AppTest:
        # Leave the landing page first: AppTest cannot replay a rendered widget whose state
        # was forged outside its options (a browser would send only its own options).
        at = open_url(at, "tech-transfer")
        at.session_state[key] = value(warehouse)
        return open_url(at, page)

    return act


def _query(page: str, **params: Callable[[Path], str]) -> Callable:
    def act(at: AppTest, warehouse: Path) -> AppTest:
        at.query_params.update({k: v(warehouse) for k, v in params.items()})
        return open_url(at, page)

    return act


def _expired_then(page: str) -> Callable:
    def act(at: AppTest, warehouse: Path) -> AppTest:
        with sqlite3.connect(layout.portal_db()) as conn:
            conn.execute(
                "UPDATE portal_user SET valid_until = ? WHERE username = 'exp-auditor'",
                (to_text(utc_now() - timedelta(seconds=1)),),
            )
        return open_url(at, page)

    return act


CTB_BATCH = lambda w: some(w, "batch", "batch_id")  # noqa: E731
CTB_PRODUCT = lambda w: some(w, "product", "product_id")  # noqa: E731
# Pages each role may not open, as README states them (never derived from portal.navigation:
# a registry that opened every page to everyone would otherwise make these attacks vanish).
SPONSOR_ONLY = role_matrix.forbidden("sponsor_qa")
AUDITOR_ONLY = role_matrix.forbidden("auditor")
DEMO_ONLY = role_matrix.forbidden("bd_demo")
assert SPONSOR_ONLY and AUDITOR_ONLY and DEMO_ONLY

ATTACKS: list[Attack] = [
    *(
        Attack(
            f"signed out opens /{s.url_path}",
            None,
            lambda at, w, p=s.url_path: open_url(at, p),
            "sign-in",
        )
        for s in PAGES
    ),  # fmt: skip
    *(
        Attack(
            f"signed out opens script {Path(s.script).stem}",
            None,
            lambda at, w, p=Path(s.script).stem: open_script(at, p),
            "nothing",
        )
        for s in PAGES
    ),  # fmt: skip
    *(
        Attack(f"sponsor QA opens /{p}", "priya", lambda at, w, p=p: open_url(at, p), "own")
        for p in sorted(SPONSOR_ONLY)
    ),  # fmt: skip
    *(
        Attack(f"auditor opens /{p}", "tom", lambda at, w, p=p: open_url(at, p), "own")
        for p in sorted(AUDITOR_ONLY)
    ),  # fmt: skip
    *(
        Attack(f"bd_demo opens /{p}", "marco", lambda at, w, p=p: open_url(at, p), "own")
        for p in sorted(DEMO_ONLY)
    ),  # fmt: skip
    Attack(
        "expired auditor opens /batch-list", "exp-auditor", _expired_then("batch-list"), "sign-in"
    ),  # fmt: skip
    Attack(
        "?batch= another sponsor's batch", "priya", _query("batch-record", batch=CTB_BATCH), "own"
    ),  # fmt: skip
    Attack("?sponsor=CTB", "priya", _query("batch-list", sponsor=lambda w: "CTB"), "own"),
    Attack(
        "?sponsor_id=CTB&product=",
        "priya",
        _query("home", sponsor_id=lambda w: "CTB", product=CTB_PRODUCT),
        "own",
    ),  # fmt: skip
    Attack(
        "?snapshot= a forged run id",
        "priya",
        _query("deviations-oos", snapshot=lambda w: "../../etc", run_id=lambda w: "x"),
        "own",
    ),  # fmt: skip
    Attack(
        "_picked_sponsor=CTB",
        "priya",
        _set_state("_picked_sponsor", lambda w: "CTB", "batch-list"),
        "own",
    ),  # fmt: skip
    Attack(
        "_principal forged as CTB's QA",
        "priya",
        _set_state("_principal", lambda w: users.get_user("bruno").principal(), "home"),
        "own",
    ),  # fmt: skip
    Attack(
        "_warehouse_root forged to /",
        "priya",
        _set_state("_warehouse_root", lambda w: "/", "batch-list"),
        "own",
    ),  # fmt: skip
    Attack(
        "batch_record:batch_id = CTB batch",
        "priya",
        _set_state("batch_record:batch_id", CTB_BATCH, "batch-record"),
        "own",
    ),  # fmt: skip
    *(
        Attack(
            f"{page}:products = CTB product",
            "priya",
            _set_state(f"{page}:products", lambda w: [CTB_PRODUCT(w)], url),
            "own",
        )
        for page, url in [
            ("overview", "home"),
            ("batches", "batch-list"),
            ("batch_record", "batch-record"),
            ("deviations", "deviations-oos"),
            ("capa", "capa-aging"),
        ]
    ),  # fmt: skip
    Attack(
        "batches:range over all time",
        "priya",
        _set_state("batches:range", lambda w: (date(1900, 1, 1), date(2200, 1, 1)), "batch-list"),
        "own",
    ),
    Attack(
        "auditor: _picked_sponsor=CTB",
        "tom",
        _set_state("_picked_sponsor", lambda w: "CTB", "capa-aging"),
        "own",
    ),  # fmt: skip
]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_on_the_app(portal: Path, foreign, everyone, attack: Attack) -> None:
    at = app()
    now = utc_now()
    if attack.user == "exp-auditor" and users.get_user("exp-auditor") is not None:
        with sqlite3.connect(layout.portal_db()) as conn:
            conn.execute("UPDATE portal_user SET valid_until = ? WHERE username = 'exp-auditor'",
                         (to_text(now + timedelta(days=1)),))  # fmt: skip
    elif attack.user == "exp-auditor":
        users.add_user("exp-auditor", "Expiring Auditor", "auditor", "auditor-password-1",
                       sponsor_id="NWT", valid_from=now - timedelta(days=1),
                       valid_until=now + timedelta(days=1))  # fmt: skip
    if attack.user:
        password = "auditor-password-1" if attack.user == "exp-auditor" else None
        at = sign_in(at, attack.user, password)
        assert principal_of(at) is not None, "sign-in before the attack failed"
    at = attack.act(at, portal)
    assert not at.exception, [e.value for e in at.exception]
    text = shown_text(at)
    if attack.expect in ("sign-in", "nothing"):
        assert principal_of(at) is None
        if attack.expect == "sign-in":
            assert [w.label for w in at.text_input] == ["Username", "Password"]
        assert not at.download_button and not at.dataframe and not at.metric
        assert not leaks(text, everyone)
        return
    who = principal_of(at)
    assert who is not None and who.username == attack.user
    sponsor = OWN.get(attack.user)
    if sponsor:  # sponsor-bound roles: own sponsor only, whatever was forged
        assert who.sponsor_id == sponsor
        leaked = leaks(text, foreign[sponsor])
        assert not leaked, leaked[:5]
    assert at.title, "some page must render"
    if " opens /" in attack.name:  # outside the role: the role's first page opens instead
        landing = role_matrix.first_page(who.role)
        assert landing.lower() in at.title[0].value.lower(), (landing, at.title[0].value)


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
    at = sign_in(app(), "priya")
    at.session_state["batches:products"] = [some(portal, "product", "product_id", "CTB")]
    at.query_params.update({"sponsor": "CTB"})
    at = open_url(at, "batch-list")
    at.download_button[0].click().run()
    frames = "\n".join(f.value.to_csv(index=False) for f in at.dataframe)
    assert frames and not leaks(frames, foreign["NWT"])
    assert _exports("priya") >= 1


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
def scopes(data_root: Path):
    warehouse = data_root / "demo" / "warehouse"
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
    data_root: Path, scopes, sponsor: str, products: list[str], start: date, span: int
) -> None:
    warehouse = data_root / "demo" / "warehouse"
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
def test_a_published_scope_cannot_read_another_partition(data_root: Path, scopes, table) -> None:
    """On the real published layout: NWT's instance cannot open CTB's file of any table."""
    import duckdb

    other = layout.partition_dir(layout.current_snapshot(data_root / "demo" / "warehouse"),
                                 table, "CTB")  # fmt: skip
    for sql in (f"SELECT * FROM read_parquet('{other}/*.parquet')",
                f"SELECT * FROM read_parquet('{other.parent}/*/*.parquet')"):  # fmt: skip
        with pytest.raises(duckdb.Error, match="Permission"):
            scopes["NWT"]._cursor().sql(sql).fetchall()
