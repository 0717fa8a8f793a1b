"""The catalogue: every column declared with its words, every query's columns declared, the
migrated pages and exports in the catalogue's words, every measure with its definition.

Query outputs come from the demo warehouse through a sponsor scope; "today" is the suite's day
(warehouse.clock.today()).
"""

from __future__ import annotations

import ast
import io
import json
import re
import zipfile
from datetime import UTC, date, datetime, time
from pathlib import Path
from xml.etree import ElementTree

import duckdb
import polars as pl
import pytest

from portal import access_log, decisions, tokens, users
from portal.auditpack_command import CLI_ROLE
from portal.widgets import export_csv, export_frame, export_xlsx
from tests.page_b_checks import run_wide
from tests.page_harness import principal, script_path
from warehouse import catalogue, clock, contract, kpis
from warehouse.auditpack import sections
from warehouse.catalogue import columns as c
from warehouse.filters import Filters
from warehouse.queries import (
    batch_record,
    batches,
    capa,
    cockpit,
    compliance,
    demo_tour,
    deviations,
    equipment,
    tech_transfer,
    training,
)
from warehouse.queries import decisions as decision_subjects
from warehouse.scope import open_sponsor_scope

SPONSOR = "NWT"
WIDE_START = date(2000, 1, 1)
SNAKE = re.compile(r"[a-z0-9]+(_[a-z0-9]+)*")
MIGRATED_PAGES = (
    "capa.py",
    "batches.py",
    "training.py",
    "equipment.py",
    "tech_transfer.py",
    "deviations.py",
    "change_control.py",
    "compliance.py",
    "overview.py",
    "batch_record.py",
    "shared_equipment.py",
)


def _columns() -> list[tuple[str, catalogue.Column]]:
    return [(d.name, col) for d in catalogue.DATASETS for col in d.columns]


# --- declarations -------------------------------------------------------------------------------


@pytest.mark.parametrize(("dataset", "column"), _columns(), ids=lambda v: getattr(v, "name", v))
def test_every_column_has_a_label_description_and_format(dataset, column) -> None:
    assert column.label.strip() and not SNAKE.fullmatch(column.label), (dataset, column.name)
    assert column.description.strip().endswith("."), (dataset, column.name)
    assert column.format in catalogue.FORMATS, (dataset, column.name)
    assert bool(column.words) == (column.format == "code"), (dataset, column.name)
    assert not column.export_code or column.words, (dataset, column.name)


@pytest.mark.parametrize("model", catalogue.DATASETS, ids=lambda d: d.name)
def test_a_dataset_names_its_query_and_heads_each_column_once(model) -> None:
    assert callable(model.function), model.query
    assert model.title and model.description
    labels = [col.label for col in model.columns]
    labels += [col.code_label for col in model.columns if col.export_code]
    assert len(labels) == len(set(labels)), model.name
    names = [col.name for col in model.columns] + list(model.hidden)
    assert len(names) == len(set(names)), model.name
    assert any(col.key for col in model.columns), model.name


def _codes(table: str, column: str) -> tuple[str, ...]:
    return contract.table(table).column(column).enum or ()


# Each code column's words against the codes that reach it: the contract's enum, plus the few
# a query derives (taken from the query module that derives them).
CODES = {
    c.BATCH_STATUS: _codes("batch", "status"),
    c.STATUS_STAGE: _codes("batch", "status"),
    c.CMO_DECISION: _codes("batch", "cmo_decision"),
    c.SPONSOR_DECISION: _codes("batch", "sponsor_decision"),
    c.CAPA_SOURCE: _codes("capa", "source_type"),
    c.CAPA_STATUS: _codes("capa", "status"),
    c.EFFECTIVENESS_RESULT: _codes("capa_effectiveness", "result"),
    c.CHECK_RESULT: _codes("capa_effectiveness", "result"),
    c.CLASSIFICATION: _codes("deviation", "classification"),
    c.DEVIATION_STATUS: _codes("deviation", "status"),
    c.ROOT_CAUSE: _codes("deviation", "root_cause_category"),
    c.TEST_TYPE: _codes("test_result", "test_type"),
    c.OOS_PHASE: _codes("oos_investigation", "phase"),
    c.OOS_OUTCOME: deviations.OOS_OUTCOMES,
    c.CHANGE_TYPE: _codes("change_control", "change_type"),
    c.RISK_CLASS: _codes("change_control", "risk_class"),
    c.CHANGE_STATUS: _codes("change_control", "status"),
    c.OBLIGATION: _codes("change_impact", "obligation"),
    c.OBLIGATION_REQUIRED: _codes("agreement_term", "obligation"),
    c.IMPACT_DECISION: _codes("change_impact", "decision"),
    c.TRAINING_STATUS: (*_codes("training_record", "status"), "MISSING"),
    c.EVENT_TYPE: _codes("batch_event", "event_type"),
    c.EQUIPMENT_STATUS: _codes("equipment", "status"),
    c.SUPPLIER_STATUS: _codes("supplier", "status"),
    c.RELEASE_STATUS: _codes("material_lot", "release_status"),
    c.MODALITY: _codes("product", "modality"),
    c.PROJECT_STATUS: _codes("tech_transfer", "status"),
    c.CURRENT_PHASE: (*_codes("tt_milestone", "milestone"), "NOT_STARTED"),
    c.NEXT_MILESTONE: _codes("tt_milestone", "milestone"),
    c.MILESTONE: _codes("tt_milestone", "milestone"),
    c.TERM_TYPE: _codes("agreement_term", "term_type"),
    c.TERM_SUBJECT: _codes("agreement_term", "subject"),
    c.TERM_OBLIGATION: _codes("agreement_term", "obligation"),
    c.CHANGE_STATUS_OF_IMPACT: _codes("change_control", "status"),
    c.EXCEPTION_KIND: c.BATCH_RECORD_EXCEPTION_KINDS,
    c.OOS_RESULT: _codes("oos_investigation", "outcome"),
    c.LATEST_CALIBRATION_RESULT: _codes("equipment_event", "result"),
    c.LATEST_QUALIFICATION_RESULT: _codes("equipment_event", "result"),
    c.CLEANING_RESULT: _codes("equipment_usage", "cleaning_result"),
    c.BREACH_KIND: c.BREACH_KINDS,
    c.BREACH_TERM: (*contract.NOTIFIABLE_EVENTS, *contract.OBLIGATIONS),
    c.NOTIFIABLE_EVENT: c.NOTIFIABLE_EVENT_KINDS,
    c.EVENT_TERM: contract.NOTIFIABLE_EVENTS,
    c.NOTIFICATION_OUTCOME: c.NOTIFICATION_OUTCOMES,
    **{col: _codes("agreement_term", "obligation") for col in c.AGREED_OBLIGATIONS},
    c.USER_ROLE: (*users.ROLES, access_log.API_ROLE, CLI_ROLE),
    c.ACCESS_EVENT: access_log.EVENTS,
    c.TOKEN_STATE: tokens.STATES,
    c.DECISION_MEANING: tuple({m: 0 for ms in decision_subjects.MEANINGS.values() for m in ms}),
    c.DECISION_ON: tuple(decision_subjects.MEANINGS),
    c.OBLIGATION_STATE: (
        "NOTICE_NOT_SENT",
        "AWAITING_SPONSOR",
        "SIGNED_NOT_RECORDED",
        "QMS_OVERDUE",
    ),
}


def test_every_code_column_is_checked_against_its_codes() -> None:
    coded = {id(col) for _, col in _columns() if col.format == "code"}
    assert coded <= {id(col) for col in CODES}


@pytest.mark.parametrize("column", list(CODES), ids=lambda col: f"{col.name}:{col.label}")
def test_words_cover_exactly_the_codes(column) -> None:
    codes = CODES[column]
    assert codes, column.name
    assert sorted(column.words) == sorted(codes)
    words = [column.words[code] for code in codes]
    # Words, not codes (an acronym such as OOS or SOP is its own word).
    assert all(w != code or len(code) <= 3 for w, code in zip(words, codes, strict=True)), words
    assert len(set(words)) == len(words), words
    assert "None" not in words


def test_derived_codes_are_the_ones_the_queries_write() -> None:
    assert training.TRAINING_STATUSES == c.TRAINING_STATUSES
    assert deviations.OOS_OUTCOMES == c.OOS_OUTCOMES
    assert c.BATCH_STATUS.words == batches.STATUS_WORDS
    assert set(catalogue.measures.CAPA_DONE_STATUSES) <= set(contract.CAPA_STATUSES)


# --- every query's columns are declared ---------------------------------------------------------


def _capa_numbers(scope, filters, today) -> list[str]:
    return capa.capas(scope, filters, today)["capa_number"].to_list()


def _batch_ids(scope, filters, today) -> list[str]:
    return batches.batch_list(scope, filters, today)["batch_id"].head(30).to_list()


def _section(name: str):
    """How a batch-record section's dataset is run here: that section of 30 records."""

    def run(fn, s, f, t) -> pl.DataFrame:
        records = fn(s, _batch_ids(s, f, t)).values()
        return pl.concat([getattr(r, name) for r in records], how="vertical_relaxed")

    return run


def _compliance_summary(scope, filters, today) -> pl.DataFrame:
    events = compliance.notifiable_events(scope, filters, today)
    changes = compliance.change_obligations(scope, filters)
    return compliance.sponsor_compliance(events, changes, filters.start, filters.end, today)


# How each dataset's own query is called here: (function, scope, filters, today) -> rows.
CALLS = {
    "quality_agreement": lambda fn, s, f, t: fn(s),
    "deviations": lambda fn, s, f, t: fn(s, f, t),
    "capas": lambda fn, s, f, t: fn(s, f, t),
    "capa_aging": lambda fn, s, f, t: fn(capa.capas(s, f, t), t),
    "capa_extensions": lambda fn, s, f, t: fn(s, _capa_numbers(s, f, t)),
    "capa_effectiveness": lambda fn, s, f, t: fn(s, _capa_numbers(s, f, t)),
    "change_controls": lambda fn, s, f, t: fn(s, f, t),
    "complaints": lambda fn, s, f, t: fn(s, f),
    "equipment": lambda fn, s, f, t: fn(s, f, t),
    "equipment_invalid_uses": lambda fn, s, f, t: fn(s, f),
    "suppliers": lambda fn, s, f, t: fn(equipment.supplier_lots(s, f)),
    "material_lots": lambda fn, s, f, t: fn(s, f),
    "batches": lambda fn, s, f, t: fn(s, f, t),
    "batch_status": lambda fn, s, f, t: fn(batches.batch_list(s, f, t)),
    "batch_exceptions": lambda fn, s, f, t: fn(s, _batch_ids(s, f, t)),
    "training_matrix": lambda fn, s, f, t: fn(s, f, t),
    "training_gaps": lambda fn, s, f, t: fn(s, f),
    "tech_transfer_projects": lambda fn, s, f, t: fn(s, f, t),
    "tech_transfer_milestones": lambda fn, s, f, t: fn(
        s, tech_transfer.projects(s, f, t)["project_id"].to_list(), t
    ),
    "products": lambda fn, s, f, t: fn(s),
    "oos_investigations": lambda fn, s, f, t: fn(s, f),
    "compliance_breaches": lambda fn, s, f, t: fn(
        compliance.notifiable_events(s, f, t),
        compliance.change_obligations(s, f),
        datetime.combine(t, time.max),
    ),
    "compliance_shares": lambda fn, s, f, t: fn(_compliance_summary(s, f, t)),
    "agreed_clocks": lambda fn, s, f, t: fn(compliance.agreement_terms(s)),
    "agreed_obligations": lambda fn, s, f, t: fn(compliance.agreement_terms(s)),
    "notifiable_events": lambda fn, s, f, t: fn(s, f, t),
    "awaiting_release": lambda fn, s, f, t: fn(s, f, t),
    "open_deviations": lambda fn, s, f, t: fn(s, f, t),
    "overdue_capas": lambda fn, s, f, t: fn(s, f, t),
    "changes_awaiting_sponsor": lambda fn, s, f, t: fn(s, f),
    "data_integrity_exceptions": lambda fn, s, f, t: fn(s, f, t, days=(t - f.start).days),
    "batch_record_exceptions": lambda fn, s, f, t: fn(
        [
            found
            for record in batch_record.batch_records(s, _batch_ids(s, f, t)).values()
            for found in batch_record.review_by_exception(record)
        ]
    ),
    "batch_record_materials": _section("materials"),
    "batch_record_steps": _section("steps"),
    "batch_record_tests": _section("tests"),
    "batch_record_deviations": _section("deviations"),
    "batch_record_capas": _section("capas"),
    "batch_record_equipment": _section("equipment"),
    "equipment_sharing": lambda fn, s, f, t: fn(s, f),
    "changeovers": lambda fn, s, f, t: fn(s, f),
    "lapsed_in_use": lambda fn, s, f, t: fn(s, f),
    "vessel_week": lambda fn, s, f, t: fn(s, *_a_week_of_use(s)),
    # The portal's own records, from one account and one logged export as the portal keeps them.
    "users": lambda fn, s, f, t: fn([ACCOUNT]),
    "access_log": lambda fn, s, f, t: fn([LOGGED]),
    "api_tokens": lambda fn, s, f, t: fn(list(ISSUED), datetime(2026, 11, 2, 9, 30, tzinfo=UTC)),
    "open_change_obligations": lambda fn, s, f, t: fn(
        s, decisions.decisions_frame([SIGNED]), None, datetime(2026, 11, 9, tzinfo=UTC)
    ),
    "decisions": lambda fn, s, f, t: fn(
        [SIGNED],
        pl.DataFrame({"decision_id": ["DEC-NWT-0001"], "recorded_at": [datetime(2026, 11, 3)]}),
    ),
    # The cockpit's datasets, here over the one sponsor's scope (a population of its own).
    "sponsor_health": lambda fn, s, f, t: fn({"S": _kpis(s, f, t)}, cockpit.DEFAULT_TARGETS)[0],
    "sponsor_health_glance": lambda fn, s, f, t: fn(
        *cockpit.health_table({"S": _kpis(s, f, t)}, cockpit.DEFAULT_TARGETS)
    )[0],
    "kpi_comparison": lambda fn, s, f, t: fn({"S": _kpis(s, f, t)}),
    "kpi_trend": lambda fn, s, f, t: fn(
        cockpit.kpi_inputs(s), "right_first_time", f.start, f.end, t
    ),
}


ACCOUNT = users.User(
    "rita", "Rita Auditor (fictional)", None, "auditor", "NWT",
    datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 6, tzinfo=UTC), False, None,
    datetime(2026, 10, 31, tzinfo=UTC), "carla",
)  # fmt: skip
LOGGED = {"id": 7, "at": "2026-11-02T09:30:00.000000+00:00", "username": "rita",
          "role": "auditor", "sponsor_id": "NWT", "event": "EXPORT", "page": "capa-aging",
          "filters_json": "{}", "row_count": 12, "content_hash": "ab" * 32,
          "detail": None}  # fmt: skip
# One token in each state on 2026-11-02: live, expired the day before, revoked.
SIGNED = decisions.Decision(
    1, "DEC-NWT-0001", "NWT", "change_approval", "CC-00061-I001", "CC-2026-0061, Fenolimab",
    "{}", "cd" * 32, "APPROVED", None, None, "priya", "Priya Raman",
    "2026-11-02T15:04:00.000000+00:00", "Europe/Berlin", "20261102T020000Z-abcdef", "0" * 64,
    "ef" * 32,
)  # fmt: skip
ISSUED = tuple(
    tokens.Token(f"tok_{n:010d}", "NWT", "NWT data team", datetime(2026, 1, 5, tzinfo=UTC),
                 "carla", datetime.combine(expiry, time.max, UTC), None, revoked,
                 revoked and "sam")
    for n, expiry, revoked in ((1, date(2027, 1, 5), None), (2, date(2026, 11, 1), None),
                               (3, date(2027, 1, 5), datetime(2026, 3, 1, tzinfo=UTC)))
)  # fmt: skip


def test_the_portals_roles_and_logged_events_all_have_words() -> None:
    assert set(c.ROLE_WORDS) == {*users.ROLES, access_log.API_ROLE, CLI_ROLE}
    assert set(c.ACCESS_EVENT_WORDS) == set(access_log.EVENTS)
    frame = access_log.entries_frame([LOGGED])
    assert frame["at"].to_list() == [datetime(2026, 11, 2, 9, 30)]
    shown = catalogue.dataset("access_log").for_export(frame)
    assert shown.row(0, named=True)["What"] == "Exported"
    assert users.users_frame([ACCOUNT])["valid_until"].to_list() == [datetime(2026, 11, 6)]


def _a_week_of_use(scope) -> tuple:
    week = demo_tour.shared_vessel_week(scope, scope)  # the scope's own latest week of use
    return week["equipment_id"], week["week"]


def _kpis(scope, filters, today) -> dict:
    inputs = cockpit.kpi_inputs(scope)
    return cockpit.compute_kpis(inputs, filters.start, filters.end, today)


@pytest.fixture(scope="module")
def scope(demo_warehouse):
    opened = open_sponsor_scope(demo_warehouse, SPONSOR)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def wide() -> Filters:
    return Filters(WIDE_START, clock.today())


def _rows(name: str, scope, filters: Filters) -> pl.DataFrame:
    model = catalogue.dataset(name)
    return CALLS[name](model.function, scope, filters, clock.today())


def test_every_dataset_is_run_here() -> None:
    assert set(CALLS) == {d.name for d in catalogue.DATASETS}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_column_a_query_returns_is_declared(name, scope, wide) -> None:
    model = catalogue.dataset(name)
    rows = _rows(name, scope, wide)
    declared = {col.name for col in model.columns} | set(model.hidden)
    assert set(rows.columns) <= declared, sorted(set(rows.columns) - declared)
    shown = model.in_words(rows)
    for col in model.shown(rows):
        if col.words and rows.height:
            unknown = set(shown[col.name].drop_nulls()) - set(col.words.values())
            assert not unknown, (col.name, unknown)


def test_a_column_no_one_declared_is_an_error_not_a_raw_header() -> None:
    rows = pl.DataFrame({"capa_number": ["C-1"], "secret_flag": [True]})
    with pytest.raises(catalogue.CatalogueError, match="secret_flag"):
        catalogue.dataset("capas").in_words(rows)


# --- overdue CAPA and the CAPA -> product relation, once ----------------------------------------


def test_overdue_capa_is_the_catalogues_one_definition(scope, wide) -> None:
    today = clock.today()
    found = capa.capas(scope, wide, today)
    expected = found.select(catalogue.capa_overdue(today).alias("overdue"))["overdue"]
    assert found["overdue"].to_list() == expected.to_list()
    from_kpis = kpis.open_capas(found, today)
    assert (
        from_kpis["overdue"].sum()
        == found["overdue"].sum()
        == kpis.overdue_capas(found, today).numerator
    )
    assert from_kpis["age_days"].to_list() == found["age_days"].drop_nulls().to_list()


def test_capa_product_relation_follows_the_source_type() -> None:
    """A CAPA raised by an OOS that also holds a deviation's id touches only the OOS's product;
    an AUDIT CAPA touches none."""
    db = duckdb.connect()
    db.execute("""
        CREATE TABLE capa AS SELECT * FROM (VALUES
            ('C1', 'OOS', 'D1', 'O1', NULL, NULL), ('C2', 'DEVIATION', 'D1', NULL, NULL, NULL),
            ('C3', 'AUDIT', 'D1', NULL, NULL, NULL))
            AS t(capa_id, source_type, deviation_id, oos_id, complaint_id, finding_id);
        CREATE TABLE deviation_link AS SELECT * FROM (VALUES ('D1', 'P-DEV', NULL))
            AS t(deviation_id, product_id, batch_id);
        CREATE TABLE batch AS SELECT * FROM (VALUES ('B1', 'P-OOS')) AS t(batch_id, product_id);
        CREATE TABLE oos_investigation AS SELECT * FROM (VALUES ('O1', 'B1'))
            AS t(oos_id, batch_id);
        CREATE TABLE complaint (complaint_id VARCHAR, product_id VARCHAR);
        CREATE TABLE inspection_finding (finding_id VARCHAR, product_id VARCHAR);
    """)  # fmt: skip
    found = db.sql(f"WITH {capa.CAPA_PRODUCT_SQL} SELECT * FROM capa_product ORDER BY capa_id")
    assert found.fetchall() == [("C1", "P-OOS"), ("C2", "P-DEV")]


# --- measures -----------------------------------------------------------------------------------


@pytest.mark.parametrize("measure", catalogue.MEASURES.values(), ids=lambda m: m.key)
def test_every_measure_has_its_definition_and_one_function(measure) -> None:
    for text in (measure.name, measure.formula, measure.source, measure.period,
                 measure.completeness):  # fmt: skip
        assert text.strip(), (measure.key, text)
    assert callable(measure.compute), measure.function
    assert measure.unit in ("rate", "per_lot", "per_million", "days", "count")
    assert catalogue.measure(measure.key) is measure


def test_every_domain_kpi_is_a_measure_and_results_name_theirs() -> None:
    numbers = {m.number for m in catalogue.MEASURES.values()} - {None}
    assert numbers == set(range(1, 17))
    assert kpis.KPI_DEFINITIONS is catalogue.MEASURES
    result = kpis.overdue_capas(pl.DataFrame({"status": ["PLAN"], "opened_at": [None],
                                              "current_due": [date(2026, 1, 1)]},
                                             schema_overrides={"opened_at": pl.Datetime}),
                                date(2026, 2, 1))  # fmt: skip
    assert result.definition is catalogue.measure("overdue_capas")
    assert result.numerator == 1


def test_the_cockpits_health_columns_and_targets_are_the_catalogues_measures() -> None:
    health = catalogue.dataset("sponsor_health")
    assert tuple(col.name for col in health.columns[2:-1]) == cockpit.HEALTH_KEYS
    for key in cockpit.HEALTH_KEYS:
        measure = catalogue.measure(key)
        assert measure.target is not None, key
        assert cockpit.DEFAULT_TARGETS[key] is measure.target
        assert health.column(key).label == measure.name


# --- pages and exports --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(demo_warehouse, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(tmp_path_factory.mktemp("portal")))
        return {
            page: run_wide(page, Path(page).stem, _reader(page), demo_warehouse)
            for page in MIGRATED_PAGES
        }


def _reader(page: str):
    """Who reads `page`: CMO quality for the site's pages, else the sponsor's QA."""
    if script_path(page).parent.name == "cmo":
        return principal("cmo_quality")
    return principal("sponsor_qa", SPONSOR)


@pytest.mark.parametrize("page", MIGRATED_PAGES)
def test_tables_read_in_the_catalogues_words(page, rendered) -> None:
    app = rendered[page]
    assert not app.exception, [e.value for e in app.exception]
    assert app.dataframe, page
    labels = {col.label for _, col in _columns()}
    words = {w for _, col in _columns() for w in col.words.values()}
    codes = {code for _, col in _columns() for code in col.words} - words
    for table in app.dataframe:
        config = json.loads(table.proto.columns)
        assert table.proto.HasField("placeholder") and table.proto.placeholder == ""
        frame = table.value
        for name in frame.columns:
            header = config.get(name, {}).get("label")
            assert header in labels, (page, name, header)
            assert not SNAKE.fullmatch(header), (page, name, header)
        text = {v for v in frame.to_numpy().ravel() if isinstance(v, str)}
        assert "None" not in text, page
        assert not text & codes, (page, sorted(text & codes)[:5])


def test_no_migrated_page_defines_a_label() -> None:
    for page in MIGRATED_PAGES:
        tree = ast.parse(script_path(page).read_text())
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            keywords = {k.arg for k in call.keywords}
            assert "column_config" not in keywords, page
            name = getattr(call.func, "id", getattr(call.func, "attr", ""))
            assert name != "dataframe", page
            if name == "export_buttons":
                assert "dataset" in keywords, page


def _xlsx_header(body: bytes) -> list[str]:
    book = zipfile.ZipFile(io.BytesIO(body))
    ns = {"x": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    strings = [
        "".join(t.text or "" for t in si.iter(f"{{{ns['x']}}}t"))
        for si in ElementTree.fromstring(book.read("xl/sharedStrings.xml")).findall("x:si", ns)
    ]
    sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
    first = sheet.find("x:sheetData/x:row", ns)
    return [strings[int(cell.find("x:v", ns).text)] for cell in first.findall("x:c", ns)]


@pytest.mark.parametrize(
    "name",
    ["capas", "batches", "training_matrix", "equipment", "material_lots",
     "tech_transfer_projects", "tech_transfer_milestones"],
)  # fmt: skip
def test_export_headers_are_the_catalogues_labels(name, scope, wide) -> None:
    model = catalogue.dataset(name)
    rows = _rows(name, scope, wide)
    expected = []
    for col in model.shown(rows):
        expected.append(col.label)
        if col.export_code:
            expected.append(col.code_label)
    exported = export_frame(rows, name)
    assert exported.columns == expected
    back = pl.read_csv(io.BytesIO(export_csv(exported, {"export": name})), comment_prefix="#")
    assert back.columns == expected
    assert _xlsx_header(export_xlsx(exported, {"export": name})) == expected
    for col in model.shown(rows):
        if col.export_code:
            assert exported[col.code_label].to_list() == rows[col.name].to_list()
    assert exported.height == rows.height


def test_the_audit_pack_heads_its_tables_with_the_catalogues_labels(scope, wide) -> None:
    for section in sections.collect(scope, wide, clock.today()):
        model = catalogue.dataset(section.key)
        assert section.title == model.title and section.about == model.description
        assert section.headings == [model.column(n).label for n in section.pdf_columns]
        assert set(section.columns) <= {col.name for col in model.columns}, section.key
