"""Free text never names another client: neither a shared record's copies nor one
sponsor's own records (an OOS summary, a late entry's reason, a test's name).

Ownership comes from the source database (tests/ownership.py), not from what was published.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import polars as pl
import pytest

from etl.redact import MASK, free_text_columns, shared_tables, text_tables
from etl.run import run_etl
from tests.browser_support import leaks
from tests.etl import assert_as_a_full_build, later_than_every_change
from tests.ownership import ownership
from warehouse.contract import TABLES_BY_NAME
from warehouse.layout import partition_dir


def _copies(snapshot: Path, sponsor: str) -> dict[tuple[str, str], list[str]]:
    """(table, column) -> the free-text values of the sponsor's copies of its records."""
    values = {}
    for table in text_tables():
        folder = partition_dir(snapshot, table.name, sponsor)
        if not folder.is_dir():
            continue
        frame = pl.read_parquet(folder)
        for column in free_text_columns(table):
            values[(table.name, column)] = frame.get_column(column).drop_nulls().to_list()
    return values


def _foreign_in_copies(snapshot: Path, source: Path) -> dict[str, dict]:
    oracle = ownership(source)
    found = {}
    for sponsor in oracle.sponsors():
        forbidden = oracle.foreign(sponsor)
        hits = {
            where: leaked
            for where, texts in _copies(snapshot, sponsor).items()
            if (leaked := leaks("\n".join(texts), forbidden))
        }
        if hits:
            found[sponsor] = hits
    return found


def test_no_record_names_another_client_in_the_demo(demo_warehouse, demo_plant) -> None:
    snapshot = (demo_warehouse / "current").resolve()
    assert _foreign_in_copies(snapshot, demo_plant.path) == {}


def test_the_demo_change_shared_by_a_product_is_masked_for_the_other_sponsor(
    demo_warehouse, demo_plant
) -> None:
    """The demo's shared change names the first sponsor's biologic in its title: its own copy
    keeps the name, the other sponsor's copy reads "[another client]", and the run says so."""
    snapshot = (demo_warehouse / "current").resolve()
    manifest = json.loads((snapshot / "manifest.json").read_text())
    masked = manifest["masked_free_text"]
    assert [m for m in masked if m["table"] == "change_control" and m["column"] == "title"]
    with sqlite3.connect(demo_plant.path) as db:
        for entry in masked:
            (title,) = db.execute(
                f"SELECT {entry['column']} FROM {entry['table']} WHERE "
                f"{shared_key(entry['table'])} = ?", (entry["key"],)
            ).fetchone()  # fmt: skip
            copy = pl.read_parquet(partition_dir(snapshot, entry["table"], entry["partition"]))
            shown = copy.filter(pl.col(shared_key(entry["table"])) == entry["key"])
            assert shown.height == 1
            assert MASK in shown[entry["column"]][0] and shown[entry["column"]][0] != title


def shared_key(table: str) -> str:
    return next(t.key for t in shared_tables() if t.name == table)


@pytest.fixture(scope="module")
def injected(demo_plant, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A copy of the demo source whose shared records' free text names other clients in the
    ways CMO staff write them, by hand (not the generator), and its published warehouse."""
    base = tmp_path_factory.mktemp("free-text")
    source = base / "plant.sqlite"
    shutil.copy(demo_plant.path, source)
    with sqlite3.connect(source) as db:
        deviation, a, b = _shared_deviation(db)
        other = db.execute(
            "SELECT sponsor_id, name FROM sponsor WHERE sponsor_id NOT IN (?, ?) ORDER BY 1",
            (a, b),
        ).fetchone()
        a_product = db.execute(
            "SELECT name FROM product WHERE sponsor_id = ? ORDER BY product_id", (a,)
        ).fetchone()[0]
        b_batch = db.execute(
            "SELECT batch_number FROM batch WHERE sponsor_id = ? ORDER BY batch_id", (b,)
        ).fetchone()[0]
        short_other = other[1].removesuffix(" (fictional)").split(" ")[0]
        # A name with no ASCII letter or digit: masking searches for it as it is.
        b_greek = "Ωμέγα"
        db.execute(
            "UPDATE product SET name = ? WHERE product_id = (SELECT min(product_id) FROM "
            "product WHERE sponsor_id = ?)", (b_greek, b),
        )  # fmt: skip
        # A name typed with letters a case-blind match takes for i and s (dotted capital I,
        # long s), which lower-casing leaves apart.
        b_second = "Sivotinib"
        db.execute(
            "UPDATE product SET name = ? WHERE product_id = (SELECT max(product_id) FROM "
            "product WHERE sponsor_id = ?)", (b_second, b),
        )  # fmt: skip
        (products,) = db.execute("SELECT count(*) FROM product WHERE sponsor_id = ?", (b,))
        assert products[0] > 1  # the Greek name and this one are two products
        title = (
            f"Spill in suite 3 during {b_batch}; {a_product.lower()} line idle; "
            f"{short_other} informed; Tank 4 cleaned; ref {other[0]}X-7; {b_greek} held; "
            "ſIVOTİNİB on hold"
        )
        db.execute("UPDATE deviation SET title = ? WHERE deviation_id = ?", (title, deviation))
        sop_title = f"Cleaning of shared vessels after {other[1]} campaigns"
        (sop,) = db.execute(
            "SELECT sop_id FROM sop WHERE scope = 'SITE' ORDER BY sop_id LIMIT 1"
        ).fetchone()
        db.execute("UPDATE sop SET title = ? WHERE sop_id = ?", (sop_title, sop))
        # One sponsor's own records, written by the CMO's staff, name other clients too.
        summary = f"Same impurity as in {b_batch}; {short_other} method compared"
        oos = _write(db, a, "oos_investigation", "summary", summary)
        reason = f"Recorded after the {b_second} changeover"
        late = _write(db, a, "batch_event", "late_entry_reason", reason)
        test = _write(db, a, "test_result", "test_name", f"Carry-over of {other[1]}")
    warehouse = base / "warehouse"
    run_etl(source, warehouse, full=True)
    facts = {
        "deviation": deviation, "a": a, "b": b, "other": other[0], "a_product": a_product,
        "b_batch": b_batch, "short_other": short_other, "sop": sop, "title": title,
        "b_greek": b_greek, "oos": oos, "summary": summary, "late": late, "reason": reason,
        "test": test,
    }  # fmt: skip
    return source, warehouse, facts


# How a record of one sponsor's reaches it: through its batch or its product.
_THROUGH = {"batch_event": "batch", "test_result": "batch", "oos_investigation": "batch",
            "bom_item": "product"}  # fmt: skip


def _shared_deviation(db: sqlite3.Connection) -> tuple[str, str, str]:
    """The first deviation two sponsors share, and the two (in id order)."""
    return db.execute("""
        SELECT deviation_id, min(sponsor_id), max(sponsor_id) FROM deviation_link
        GROUP BY deviation_id HAVING count(DISTINCT sponsor_id) = 2
        ORDER BY deviation_id LIMIT 1""").fetchone()  # fmt: skip


def _write(db: sqlite3.Connection, sponsor: str, table: str, column: str, text: str) -> str:
    """`text` written into `column` of the sponsor's first record of `table` (by key; of the
    entries, one with a late entry's reason already): that record's key."""
    key, through = TABLES_BY_NAME[table].key, _THROUGH[table]
    late = " AND late_entry_reason IS NOT NULL" if table == "batch_event" else ""
    (record,) = db.execute(
        f"SELECT min({key}) FROM {table} JOIN {through} USING ({through}_id) "
        f"WHERE sponsor_id = ?{late}", (sponsor,)
    ).fetchone()  # fmt: skip
    db.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (text, record))
    return record


def _row(warehouse: Path, table: str, sponsor: str, key: str, value: str) -> dict:
    snapshot = (warehouse / "current").resolve()
    frame = pl.read_parquet(partition_dir(snapshot, table, sponsor))
    return frame.filter(pl.col(key) == value).row(0, named=True)


def test_each_copy_masks_what_its_sponsor_may_not_see(injected) -> None:
    _, warehouse, f = injected
    in_a = _row(warehouse, "deviation", f["a"], "deviation_id", f["deviation"])["title"]
    in_b = _row(warehouse, "deviation", f["b"], "deviation_id", f["deviation"])["title"]
    assert f["b_batch"] not in in_a and f["a_product"].lower() in in_a
    assert f["b_greek"] not in in_a and f"{MASK} held" in in_a
    assert "ſIVOTİNİB" not in in_a and f"{MASK} on hold" in in_a
    assert "ſIVOTİNİB on hold" in in_b
    assert f["a_product"].lower() not in in_b and f["b_batch"] in in_b
    assert f"{f['b_greek']} held" in in_b
    for title in (in_a, in_b):
        assert f["short_other"] not in title  # a third client, by its short name
        assert "Tank 4 cleaned" in title and "Spill in suite 3" in title
        assert f"{f['other']}X-7" in title  # the id inside another word is no name
    assert in_a.count(MASK) == 4 and in_b.count(MASK) == 2
    site = _row(warehouse, "deviation", f["a"], "deviation_id", f["deviation"])
    assert site["deviation_number"]  # the record itself is kept, only its text is masked


def test_one_sponsors_own_records_are_masked_too(injected) -> None:
    """An OOS summary, a late entry's reason and a test's name of sponsor a name b's batch
    and product and a third client: a reads "[another client]" there, and every masked
    value is reported."""
    _, warehouse, f = injected
    summary = _row(warehouse, "oos_investigation", f["a"], "oos_id", f["oos"])["summary"]
    assert summary == f"Same impurity as in {MASK}; {MASK} method compared"
    reason = _row(warehouse, "batch_event", f["a"], "event_id", f["late"])["late_entry_reason"]
    assert reason == f"Recorded after the {MASK} changeover"
    test = _row(warehouse, "test_result", f["a"], "test_id", f["test"])["test_name"]
    assert test == f"Carry-over of {MASK}"
    snapshot = (warehouse / "current").resolve()
    manifest = json.loads((snapshot / "manifest.json").read_text())
    reported = {(m["table"], m["key"], m["column"], m["partition"])
                for m in manifest["masked_free_text"]}  # fmt: skip
    assert {
        ("oos_investigation", f["oos"], "summary", f["a"]),
        ("batch_event", f["late"], "late_entry_reason", f["a"]),
        ("test_result", f["test"], "test_name", f["a"]),
    } <= reported


def test_a_site_wide_record_is_masked_for_every_other_sponsor(injected) -> None:
    source, warehouse, f = injected
    for sponsor in ownership(source).sponsors():
        title = _row(warehouse, "sop", sponsor, "sop_id", f["sop"])["title"]
        if sponsor == f["other"]:
            assert "(fictional) campaigns" in title
        else:
            assert title == f"Cleaning of shared vessels after {MASK} campaigns"


def test_every_masked_value_is_reported_and_no_other_leaks(injected) -> None:
    source, warehouse, f = injected
    snapshot = (warehouse / "current").resolve()
    manifest = json.loads((snapshot / "manifest.json").read_text())
    reported = {(m["table"], m["key"], m["partition"]) for m in manifest["masked_free_text"]}
    assert {
        ("deviation", f["deviation"], f["a"]),
        ("deviation", f["deviation"], f["b"]),
    } <= reported
    assert {p for t, k, p in reported if (t, k) == ("sop", f["sop"])} == (
        set(ownership(source).sponsors()) - {f["other"]}
    )
    assert _foreign_in_copies(snapshot, source) == {}


def test_a_client_whose_rows_are_quarantined_is_masked_all_the_same(
    demo_plant, tmp_path: Path
) -> None:
    """Masking takes its names from the quarantined rows too: a sponsor whose own row is
    quarantined (so are its products) and a product quarantined by a typo are still clients,
    and a shared title naming them is masked in every other sponsor's copy (it took its
    names from published rows only: both reached the other sponsors). Fail-closed: the
    quarantined product's own sponsor reads it masked too, as it sees no such product. A
    day's run that quarantines them masks as a full build of the same source."""
    plant = Path(shutil.copy(demo_plant.path, tmp_path / "plant.sqlite"))
    with sqlite3.connect(plant) as db:
        deviation, a, b = _shared_deviation(db)
        other, other_name = db.execute(
            "SELECT sponsor_id, name FROM sponsor WHERE sponsor_id NOT IN (?, ?) ORDER BY 1",
            (a, b),
        ).fetchone()
        (other_product,) = db.execute(
            "SELECT name FROM product WHERE sponsor_id = ? ORDER BY product_id", (other,)
        ).fetchone()
        # A product of b's that the deviation's links do not name (through a batch or not):
        # quarantined, it leaves b's copy of the deviation where it is.
        b_product_id, b_product = db.execute("""
            SELECT product_id, name FROM product WHERE sponsor_id = ? AND product_id NOT IN (
                SELECT coalesce(l.product_id, '') FROM deviation_link l WHERE deviation_id = ?
                UNION SELECT t.product_id FROM batch t JOIN deviation_link l USING (batch_id)
                WHERE l.deviation_id = ?)
            ORDER BY product_id""", (b, deviation, deviation)).fetchone()  # fmt: skip
        other_name = other_name.removesuffix(" (fictional)")
        title = f"Line clearance after {other_name} run of {other_product}; {b_product} held"
        db.execute("UPDATE deviation SET title = ? WHERE deviation_id = ?", (title, deviation))
    warehouse = tmp_path / "wh"
    run_etl(plant, warehouse, full=True)
    masked_for_a = f"Line clearance after {MASK} run of {MASK}; {MASK} held"
    assert _row(warehouse, "deviation", a, "deviation_id", deviation)["title"] == masked_for_a

    with sqlite3.connect(plant) as db:
        at = later_than_every_change(db)
        # A typo dates the sponsor's row decades ahead: it is quarantined as in the future.
        db.execute("UPDATE sponsor SET updated_at = '2062-11-04T00:00:00' WHERE sponsor_id = ?",
                   (other,))  # fmt: skip
        db.execute("UPDATE product SET modality = 'BIOLOGICS', updated_at = ? "
                   "WHERE product_id = ?", (at, b_product_id))  # fmt: skip
    assert run_etl(plant, warehouse).mode == "incremental"
    snapshot = (warehouse / "current").resolve()
    quarantined = {
        name: set(pl.read_parquet(snapshot / "_quarantine" / f"{name}.parquet")["key"])
        for name in ("sponsor", "product")
    }
    assert other in quarantined["sponsor"] and b_product_id in quarantined["product"]
    assert not partition_dir(snapshot, "deviation", other).exists()
    assert _row(warehouse, "deviation", a, "deviation_id", deviation)["title"] == masked_for_a
    in_b = _row(warehouse, "deviation", b, "deviation_id", deviation)["title"]
    assert in_b == masked_for_a
    masked = json.loads((snapshot / "manifest.json").read_text())["masked_free_text"]
    assert {m["partition"] for m in masked if m["key"] == deviation} >= {a, b}
    run_etl(plant, tmp_path / "full", full=True)
    assert_as_a_full_build(warehouse, tmp_path / "full")


def test_a_day_that_renames_what_kept_texts_name_masks_them_as_a_full_build(
    demo_plant, tmp_path: Path
) -> None:
    """An incremental run keeps the live files of what did not change, but their masking
    follows every identifier: a day that gives one of b's batches a new number masks that
    number where a's kept entry, test and bill of materials name it, and unmasks the old
    number a's bill of materials named. Its snapshot equals a full build's."""
    plant = Path(shutil.copy(demo_plant.path, tmp_path / "plant.sqlite"))
    with sqlite3.connect(plant) as db:
        a, b = db.execute("SELECT min(sponsor_id), max(sponsor_id) FROM sponsor").fetchone()
        b_batch, old = db.execute(
            "SELECT batch_id, batch_number FROM batch WHERE sponsor_id = ? ORDER BY batch_id",
            (b,),
        ).fetchone()
        new = "ZX9-700001"
        late = _write(db, a, "batch_event", "late_entry_reason", f"Held for the clearance of {new}")
        test = _write(db, a, "test_result", "test_name", f"Carry-over check after {new}")
        bom = _write(db, a, "bom_item", "material_name", f"Blend reworked from {old}")
    warehouse = tmp_path / "wh"
    run_etl(plant, warehouse, full=True)

    def texts() -> tuple[str, str, str]:
        return (
            _row(warehouse, "batch_event", a, "event_id", late)["late_entry_reason"],
            _row(warehouse, "test_result", a, "test_id", test)["test_name"],
            _row(warehouse, "bom_item", a, "bom_item_id", bom)["material_name"],
        )

    assert texts() == (
        f"Held for the clearance of {new}",  # names nothing yet
        f"Carry-over check after {new}",
        f"Blend reworked from {MASK}",  # b's batch
    )

    with sqlite3.connect(plant) as db:
        db.execute("UPDATE batch SET batch_number = ?, updated_at = ? WHERE batch_id = ?",
                   (new, later_than_every_change(db), b_batch))  # fmt: skip
    notes: list[str] = []
    assert run_etl(plant, warehouse, progress=notes.append).mode == "incremental"
    assert texts() == (
        f"Held for the clearance of {MASK}",
        f"Carry-over check after {MASK}",
        f"Blend reworked from {old}",  # the number of nothing any more
    )
    assert any("every entry judged" in note for note in notes), notes
    renamed = next(note for note in notes if note.startswith("derived whole"))
    assert "bom_item" in renamed and "test_result" in renamed
    run_etl(plant, tmp_path / "full", full=True)
    assert_as_a_full_build(warehouse, tmp_path / "full")

    # The next day changes nothing they name: the entries of one batch are judged, the
    # other tables' files kept.
    with sqlite3.connect(plant) as db:
        db.execute("UPDATE batch SET units_produced = units_produced, updated_at = ? "
                   "WHERE batch_id = ?", (later_than_every_change(db), b_batch))  # fmt: skip
    notes.clear()
    assert run_etl(plant, warehouse, progress=notes.append).mode == "incremental"
    assert not any("every entry judged" in note or "derived whole" in note for note in notes)
    assert any("changed batches judged again" in note for note in notes), notes
    assert "bom_item" in next(note for note in notes if note.startswith("kept "))
    run_etl(plant, tmp_path / "full2", full=True)
    assert_as_a_full_build(warehouse, tmp_path / "full2")


def test_a_name_that_holds_another_clients_is_left_whole(demo_plant, tmp_path: Path) -> None:
    """Sponsor a's product "Quorvia" is a word of b's own "Quorvia 7": b reads its product's
    name, its bill of materials and a shared title naming "Quorvia 7" as written, and only
    a's "Quorvia" standing alone masked."""
    plant = Path(shutil.copy(demo_plant.path, tmp_path / "plant.sqlite"))
    with sqlite3.connect(plant) as db:
        deviation, a, b = _shared_deviation(db)
        products = {}
        for sponsor, name in ((a, "Quorvia"), (b, "Quorvia 7")):
            (products[sponsor],) = db.execute(
                "SELECT min(product_id) FROM product WHERE sponsor_id = ?", (sponsor,)
            ).fetchone()
            db.execute("UPDATE product SET name = ? WHERE product_id = ?",
                       (name, products[sponsor]))  # fmt: skip
        bom = db.execute(
            "SELECT min(bom_item_id) FROM bom_item WHERE product_id = ?", (products[b],)
        ).fetchone()[0]
        db.execute("UPDATE bom_item SET material_name = 'Quorvia 7 drug substance' "
                   "WHERE bom_item_id = ?", (bom,))  # fmt: skip
        db.execute("UPDATE deviation SET title = 'Quorvia 7 line held; Quorvia cleared' "
                   "WHERE deviation_id = ?", (deviation,))  # fmt: skip
    warehouse = tmp_path / "wh"
    run_etl(plant, warehouse, full=True)
    assert _row(warehouse, "product", b, "product_id", products[b])["name"] == "Quorvia 7"
    material = _row(warehouse, "bom_item", b, "bom_item_id", bom)["material_name"]
    assert material == "Quorvia 7 drug substance"
    in_b = _row(warehouse, "deviation", b, "deviation_id", deviation)["title"]
    assert in_b == f"Quorvia 7 line held; {MASK} cleared"
    in_a = _row(warehouse, "deviation", a, "deviation_id", deviation)["title"]
    assert in_a == f"{MASK} line held; Quorvia cleared"
    assert _row(warehouse, "product", a, "product_id", products[a])["name"] == "Quorvia"


def test_a_number_with_letters_after_it_is_masked_as_that_number(
    demo_plant, tmp_path: Path
) -> None:
    """A split lot is written as its batch's number with a letter after it ("...0012A"):
    b's is masked in a's test name, a's own stays, and b's number with a digit after it is
    another number, left as written."""
    plant = Path(shutil.copy(demo_plant.path, tmp_path / "plant.sqlite"))
    with sqlite3.connect(plant) as db:
        _, a, b = _shared_deviation(db)
        mine, theirs = (
            db.execute(
                "SELECT min(batch_number) FROM batch WHERE sponsor_id = ?", (sponsor,)
            ).fetchone()[0]
            for sponsor in (a, b)
        )
        other = f"{theirs}9"
        assert not db.execute(
            "SELECT count(*) FROM batch WHERE lower(batch_number) = lower(?)", (other,)
        ).fetchone()[0]
        test = _write(db, a, "test_result", "test_name",
                      f"Split lots {theirs}A, {theirs}b and {mine}A; not {other}")  # fmt: skip
    warehouse = tmp_path / "wh"
    run_etl(plant, warehouse, full=True)
    name = _row(warehouse, "test_result", a, "test_id", test)["test_name"]
    assert name == f"Split lots {MASK}A, {MASK}b and {mine}A; not {other}"
