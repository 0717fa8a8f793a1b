"""Executed batch record entries, vectorised with numpy and streamed into SQLite in chunks.

The `large` preset writes about ten million events, so nothing here loops per event in
Python: a batch's entries follow its timeline (dispensing, manufacturing steps cycling
through the modality's step template, QC result entry, QA review, disposition signature).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from etl.demo_source import presets as P
from warehouse.contract import VERIFIED_EVENT_TYPES

EPOCH = datetime(1970, 1, 1)
TAIL = (
    "QC result entry: release testing",
    "QC result entry: result review",
    "QA batch record review",
    "QA disposition signature",
)
TAIL_TYPES = ("RESULT", "RESULT", "REVIEW", "SIGN")
DISPENSING = 3  # entries before the manufacturing steps
TAIL_LEN = len(TAIL)


def seconds(instant: datetime) -> int:
    return int((instant - EPOCH).total_seconds())


def mfg_step(modality: str, seq: int) -> tuple[str, str]:
    """(name, event type) of manufacturing entry `seq` of a batch of this modality."""
    template = P.STEP_TEMPLATES[modality]
    return template[(seq - DISPENSING) % len(template)]


@dataclass
class Tamper:
    """A planned change to one entry that breaks one data-integrity rule."""

    kind: str
    minutes: int = 0
    reason: str | None = None
    operator: str | None = None


def write_batch_events(
    conn: sqlite3.Connection,
    batches: list[dict],
    operator_ids: list[str],
    reviewers: list[str],
    analysts: list[str],
    now: datetime,
    seed: int,
    tampering: dict[tuple[int, int], Tamper],
    progress: Callable[[str], None] | None = None,
    chunk: int = 2000,
) -> tuple[int, dict[tuple[int, int], dict]]:
    """Insert the entries of `batches`; return the count and the tampered entries' values."""
    rng = np.random.default_rng([seed, 17])
    index = {op: i for i, op in enumerate(operator_ids)}
    ops = np.array([*operator_ids, None], dtype=object)  # -1 indexes None
    now_s = seconds(now)

    names, types = _step_tables(max(b["_n_events"] for b in batches))
    modality_no = {m: i for i, m in enumerate(P.MODALITIES)}
    width = names.shape[1]

    started = [b for b in batches if b["_start"] < now]
    n_ev = np.array([b["_n_events"] for b in started], dtype=np.int64)
    starts = np.array([seconds(b["_start"]) for b in started], dtype=np.int64)
    ends = np.array([seconds(b["_end"]) for b in started], dtype=np.int64)
    qc = np.array([seconds(b["_qc_done"]) for b in started], dtype=np.int64)
    review = np.array([seconds(b["_review"]) for b in started], dtype=np.int64)
    cmo = np.array([seconds(b["_cmo"]) for b in started], dtype=np.int64)
    signer = np.array([index[b["_cmo_by"]] for b in started], dtype=np.int64)
    modality = np.array([modality_no[b["_product"]["modality"]] for b in started])
    team = np.array([[index[o] for o in b["_train"]["team"]] for b in started], dtype=np.int64)
    qa = np.array([index[o] for o in reviewers], dtype=np.int64)
    qc_ops = np.array([index[o] for o in analysts], dtype=np.int64)
    position = {id(b): i for i, b in enumerate(started)}
    targets: dict[int, list[tuple[int, Tamper]]] = {}
    for (b_no, seq), tamper in tampering.items():
        targets.setdefault(position[id(batches[b_no])], []).append((seq, tamper))
    key_of = {position[id(batches[b_no])]: b_no for b_no, _ in tampering}

    sql = f"INSERT INTO batch_event VALUES ({','.join('?' * 12)})"
    written, serial = 0, 0
    tampered: dict[tuple[int, int], dict] = {}
    for lo in range(0, len(started), chunk):
        hi = min(lo + chunk, len(started))
        counts = n_ev[lo:hi]
        total = int(counts.sum())
        b = np.repeat(np.arange(lo, hi), counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        seq = np.arange(total) - first
        n = n_ev[b]
        mfg_n = n - DISPENSING - TAIL_LEN
        tail = seq - (n - TAIL_LEN)  # 0..3 for the tail entries, negative before

        # Performed: dispensing at the start, steps evenly through manufacturing (jitter
        # below half the spacing keeps them in sequence), QC results, review, signature.
        j = seq - DISPENSING
        step_span = ends[b] - starts[b] - 3 * 3600
        jitter = rng.uniform(-0.2, 0.2, total)
        performed = np.where(
            seq < DISPENSING,
            starts[b] + seq * 1200 + rng.integers(0, 600, total),
            starts[b] + 7200 + (step_span * (j + 0.5 + jitter) / np.maximum(mfg_n, 1)),
        ).astype(np.int64)
        qc_span = qc[b] - ends[b]
        performed = np.where(tail == 0, ends[b] + qc_span // 2, performed)
        performed = np.where(tail == 1, ends[b] + qc_span * 4 // 5, performed)
        performed = np.where(tail == 2, review[b], performed)
        performed = np.where(tail == 3, cmo[b], performed)

        name_idx = np.where(tail >= 0, width * 3 + np.maximum(tail, 0), modality[b] * width + seq)
        step_names = names.ravel()[name_idx]
        event_types = types.ravel()[name_idx]
        verified = np.isin(event_types, VERIFIED_EVENT_TYPES)

        crew = rng.integers(0, team.shape[1], total)
        performer = team[b, crew]
        verifier = team[b, (crew + 1 + rng.integers(0, team.shape[1] - 1, total)) % team.shape[1]]
        qa_pick = rng.integers(0, len(qa), total)
        qa_other = (qa_pick + 1 + rng.integers(0, len(qa) - 1, total)) % len(qa)
        performer = np.where(tail >= 0, qc_ops[rng.integers(0, len(qc_ops), total)], performer)
        performer = np.where(tail == 2, qa[qa_pick], performer)
        verifier = np.where(tail == 2, qa[qa_other], verifier)
        performer = np.where(tail == 3, signer[b], performer)
        verifier = np.where(verified, verifier, -1)

        recorded = performed + rng.integers(30, 1800, total)
        verified_at = np.where(verified, performed + rng.integers(120, 3300, total), -1)
        reason = np.full(total, None, dtype=object)

        for pos in np.unique(b[np.isin(b, list(targets))]) if targets else ():
            row0 = int(np.searchsorted(b, pos))
            for t_seq, tamper in targets[int(pos)]:
                i = row0 + t_seq
                if tamper.kind == "LATE_ENTRY":
                    recorded[i] = performed[i] + tamper.minutes * 60
                    reason[i] = tamper.reason
                elif tamper.kind == "MISSING_VERIFIER":
                    verifier[i], verified_at[i] = -1, -1
                elif tamper.kind == "SELF_VERIFICATION":
                    verifier[i] = performer[i]
                elif tamper.kind == "OUT_OF_ORDER":
                    verified_at[i] = performed[i] - tamper.minutes * 60
                elif tamper.kind == "TRAINING_GAP":
                    performer[i] = index[tamper.operator]
                elif tamper.kind in ("OUT_OF_SEQUENCE", "OUTSIDE_BATCH_WINDOW"):
                    # The entry moves whole (record and check with it): nothing else is broken.
                    around = performed[max(i - 2, 0) : i + 1]
                    moved = _moved(tamper, t_seq, around, starts[pos], cmo[pos])
                    performed[i] += moved
                    recorded[i] += moved
                    if verified_at[i] >= 0:
                        verified_at[i] += moved
                tampered[(key_of[int(pos)], t_seq)] = {
                    "seq": t_seq,
                    "event_id": f"EV-{serial + i + 1:09d}",
                    "performed_at": _iso(performed[i]),
                    "recorded_at": _iso(recorded[i]),
                    "performed_by": operator_ids[performer[i]],
                    "verified_at": _iso(verified_at[i]) if verified_at[i] >= 0 else None,
                    "step_name": str(step_names[i]),
                }

        updated = np.maximum(recorded, verified_at)
        keep = updated < now_s  # entries not yet made at the clock do not exist
        ids = [f"EV-{k:09d}" for k in range(serial + 1, serial + total + 1)]
        serial += total
        rows = zip(
            (i for i, k in zip(ids, keep, strict=True) if k),
            np.array([bb["batch_id"] for bb in started[lo:hi]], dtype=object)[b - lo][keep],
            seq[keep].tolist(),
            step_names[keep].tolist(),
            event_types[keep].tolist(),
            ops[performer[keep]].tolist(),
            _iso_array(performed[keep]),
            _iso_array(recorded[keep]),
            ops[verifier[keep]].tolist(),
            _iso_array(verified_at[keep], nullable=True),
            reason[keep].tolist(),
            _iso_array(updated[keep]),
            strict=True,
        )
        conn.executemany(sql, rows)
        written += int(keep.sum())
        if progress:
            progress(f"batch events: {written:,} written")
    return written, tampered


def _moved(tamper: Tamper, seq: int, times: np.ndarray, start: int, disposed: int) -> int:
    """Seconds an OUT_OF_SEQUENCE or OUTSIDE_BATCH_WINDOW entry moves by.

    Out of sequence: to `minutes` before the entry of the previous seq (at most half way back
    to the one before that), `times` being those two entries' and its own. Outside the batch:
    the first entry to `minutes` before the batch started, the last to `minutes` after
    disposition.
    """
    if tamper.kind == "OUT_OF_SEQUENCE":
        second_last, last, own = (int(t) for t in times)
        return last - min(tamper.minutes * 60, (last - second_last) // 2) - own
    edge = start - tamper.minutes * 60 if seq == 0 else disposed + tamper.minutes * 60
    return edge - int(times[-1])


def _step_tables(max_events: int) -> tuple[np.ndarray, np.ndarray]:
    """Names and types by (modality, seq); row 3 holds the four tail entries."""
    names = np.empty((4, max_events), dtype=object)
    types = np.empty((4, max_events), dtype=object)
    for m, modality in enumerate(P.MODALITIES):
        for seq in range(max_events):
            if seq < DISPENSING:
                name, etype = P.DISPENSE_STEPS[seq], "DISPENSE"
            else:
                name, etype = mfg_step(modality, seq)
            names[m, seq], types[m, seq] = f"Step {seq}: {name}", etype
    names[3, :TAIL_LEN], types[3, :TAIL_LEN] = TAIL, TAIL_TYPES
    return names, types


def _iso(value: int) -> str:
    return str(np.datetime64(int(value), "s"))


def _iso_array(values: np.ndarray, nullable: bool = False) -> list:
    text = values.astype("datetime64[s]").astype("U19")
    if not nullable:
        return text.tolist()
    return np.where(values < 0, None, text.astype(object)).tolist()
