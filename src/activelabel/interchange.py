"""Answers in, items out: plain CSV/JSONL/Parquet, Label Studio JSON and Prodigy JSONL.

Label Studio (https://labelstud.io/guide/export) exports a JSON array of
tasks, each with its ``data`` and a list of ``annotations`` whose
``result`` holds ``choices``. Prodigy writes one JSON object per line with
``answer`` (accept, reject, ignore) and, for choice tasks, ``accept``. Our
own exports put the item id in ``data.id`` (Label Studio) and ``meta.id``
(Prodigy), so labels made in either tool come back to the right item.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from activelabel.errors import InvalidParameterError, MalformedFileError, UnwritableFileError
from activelabel.files import Records

__all__ = ["parse_answers", "write_export", "write_answers", "EXPORTS", "EXPORT_FORMATS", "ANSWER_COLUMNS"]

# "answers" is the audit log: every answer event, one row each (see write_answers); the others hold items.
# format -> (what the file holds, its suffix): the items with their labels, or every answer event
EXPORTS = {"csv": ("labels", ".csv"), "jsonl": ("labels", ".jsonl"), "parquet": ("labels", ".parquet"),
           "labelstudio": ("labelstudio", ".json"), "prodigy": ("prodigy", ".jsonl"), "answers": ("answers", ".csv")}
EXPORT_FORMATS = tuple(EXPORTS)
ANSWER_COLUMNS = ["event", "item", "split", "annotator", "answer", "label", "seconds", "time", "source", "retracts",
                  "retracted_by"]


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())


def parse_answers(records: Records, *, id_column: str = "id", label_column: str = "label",
                  annotator_column: str | None = None, seconds_column: str | None = None) -> pd.DataFrame:
    """One row per answer: ``row`` (in the file), ``external_id``, ``answer``, ``label``, ``annotator``, ``seconds``.

    ``answer`` is ``label``, ``skip``, ``unsure`` or ``ignored`` (answers
    that carry no label, such as a Prodigy reject).
    """
    cols = set(records.frame.columns)
    if {"event", "retracts", "answer"} <= cols:
        raise MalformedFileError(f"{records.path}: this is an answers export (the audit log of every event), not "
                                 "labels; import an export of the labels (--format csv, jsonl, labelstudio or prodigy)")
    # Our own exports come back: their unlabeled tasks carry no annotations (Label Studio) or no answer (Prodigy)
    if {"annotations", "data"} <= cols or ("data" in cols and all(isinstance(d, dict) for d in records.frame["data"])):
        out = _label_studio(records, id_column)
    elif ("answer" in cols and ({"accept", "label"} & cols)) or {"options", "meta"} <= cols:
        out = _prodigy(records, id_column, label_column)
    else:
        records.require(id_column, label_column, annotator_column, seconds_column)
        f = records.frame
        out = pd.DataFrame({"row": np.arange(len(f)), "external_id": f[id_column].map(_id),
                            "answer": "label", "label": f[label_column].map(lambda v: None if _blank(v) else str(v).strip()),
                            "annotator": f[annotator_column].map(lambda v: None if _blank(v) else str(v))
                            if annotator_column else None,
                            "seconds": pd.to_numeric(f[seconds_column], errors="coerce") if seconds_column else np.nan})
    if out.empty:
        raise MalformedFileError(f"{records.path}: no answers found")
    blank = out["external_id"].isna()
    if blank.any():
        raise MalformedFileError(f"{records.where(int(out['row'][blank].iloc[0]))}: no item id")
    if seconds_column and "seconds" in out:
        _check_seconds(records, out, seconds_column)
    return out.reset_index(drop=True)


_MAX_SECONDS = 86_400.0  # one answer taking more than a day is a wrong column or unit, not a measurement


def _check_seconds(records: Records, out: pd.DataFrame, column: str) -> None:
    """Seconds are empty, or a number from 0 to a day: text, negatives and absurd values would skew the admin's
    time per answer."""
    raw = records.frame[column]
    given = ~raw.map(_blank).to_numpy(dtype=bool)
    seconds = out["seconds"].to_numpy(dtype=float)
    bad = given & ~((seconds >= 0) & (seconds <= _MAX_SECONDS))  # NaN (not a number) fails too
    bad |= raw.map(lambda v: isinstance(v, bool)).to_numpy(dtype=bool)  # JSON true is not 1 second
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise MalformedFileError(f"{records.where(int(out['row'].iloc[i]))}: column {column!r} must be seconds "
                                 f"from 0 to {_MAX_SECONDS:,.0f}, got {str(raw.iloc[i])[:40]!r}")


def _id(v) -> str | None:
    if _blank(v):
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def _label_studio(records: Records, id_column: str) -> pd.DataFrame:
    rows = []
    given_all = records.frame["annotations"] if "annotations" in records.frame else [None] * len(records.frame)
    for i, (data, given) in enumerate(zip(records.frame["data"], given_all)):
        given = [] if given is None or (isinstance(given, float) and np.isnan(given)) else given  # a task, unlabeled
        if not isinstance(data, dict) or not isinstance(given, list):
            raise MalformedFileError(f"{records.where(i)}: a Label Studio task needs a 'data' object and an "
                                     "'annotations' list")
        ext = _id(data.get(id_column, data.get("id")))
        for k, a in enumerate(given):
            where = f"{records.where(i)} (task index {i}), annotation {k + 1}"
            if not isinstance(a, dict):
                raise MalformedFileError(f"{where}: an annotation must be an object, found {_kind(a)}")
            result = a.get("result")
            result = [] if result is None else result
            if not isinstance(result, list):
                raise MalformedFileError(f"{where}: 'result' must be a list of objects, found {_kind(result)}")
            bad = [r for r in result if not isinstance(r, dict)]
            if bad:
                raise MalformedFileError(f"{where}: every entry of 'result' must be an object, found {_kind(bad[0])}")
            who = a.get("completed_by")
            who = who.get("email") if isinstance(who, dict) else who
            name = None if who is None else f"labelstudio:{who}"
            choices = [r["value"]["choices"] for r in result
                       if isinstance(r.get("value"), dict) and r["value"].get("choices")]
            if a.get("was_cancelled") or not choices:
                rows.append((i, ext, "skip", None, name, a.get("lead_time")))
            else:
                rows.append((i, ext, "label", str(choices[0][0]), name, a.get("lead_time")))
    return pd.DataFrame(rows, columns=["row", "external_id", "answer", "label", "annotator", "seconds"])


def _kind(value) -> str:
    """What a JSON value is, in JSON's words (a list, a string, ...), for error messages."""
    names = {list: "a list", str: "a string", bool: "true/false", int: "a number", float: "a number",
             dict: "an object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _prodigy(records: Records, id_column: str, label_column: str) -> pd.DataFrame:
    f = records.frame
    rows = []
    for i in range(len(f)):
        rec = f.iloc[i]
        meta = rec.get("meta") if isinstance(rec.get("meta"), dict) else {}
        ext = _id(meta.get(id_column, rec.get(id_column)))
        answer = rec.get("answer")
        name = rec.get("_annotator_id")
        name = None if _blank(name) else f"prodigy:{name}"
        accept = rec.get("accept")
        if _blank(answer):  # a task nobody answered (our export's unlabeled items): no answer to take
            continue
        if answer == "ignore":
            rows.append((i, ext, "skip", None, name, None))
        elif answer == "accept":
            if isinstance(accept, (list, np.ndarray)) and len(accept) > 1:
                raise MalformedFileError(f"{records.where(i)}: 'accept' holds {len(accept)} labels; a project takes "
                                         "one label per item")
            if isinstance(accept, (list, np.ndarray)) and len(accept):
                label = accept[0]
            else:
                label = rec.get(label_column)
            rows.append((i, ext, "label", None if _blank(label) else str(label), name, None))
        elif answer == "reject":
            rows.append((i, ext, "ignored", None, name, None))  # "not this label": no label to store
        else:
            raise MalformedFileError(f"{records.where(i)}: Prodigy answer must be accept, reject or ignore, "
                                     f"got {answer!r}")
    return pd.DataFrame(rows, columns=["row", "external_id", "answer", "label", "annotator", "seconds"])


def _format(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in EXPORT_FORMATS:
            raise InvalidParameterError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
        return fmt
    by_suffix = {}  # each suffix names the first format that has it: .csv is csv, .jsonl jsonl, .json labelstudio
    for name, (_, suffix) in EXPORTS.items():
        by_suffix.setdefault(suffix, name)
    if path.suffix.lower() not in by_suffix:
        raise InvalidParameterError(f"{path}: cannot tell the format from {path.suffix!r}; pass --format "
                                    f"({', '.join(EXPORT_FORMATS)})")
    return by_suffix[path.suffix.lower()]


def _flat(items: pd.DataFrame) -> pd.DataFrame:
    """One column per field: table rows' values spread into their own columns."""
    out = items[["external_id", "split", "kind", "text", "image"]].rename(columns={"external_id": "id"})
    if items["data"].notna().any():
        data = pd.DataFrame([d if isinstance(d, dict) else {} for d in items["data"]], index=items.index)
        out = pd.concat([out, data.add_prefix("data.")], axis=1)
    out = out.drop(columns=[c for c in ("text", "image") if out[c].isna().all()])
    out["label"] = items["label"]
    out["votes"] = items["n_votes"]  # the opinions the label rests on
    if "aggregation" in items:  # how the label was derived from them, and the consensus's top probability
        out["aggregation"] = items["aggregation"]
        out["consensus"] = items["consensus"].round(4)
    out["prediction"] = items["prediction"]
    out["confidence"] = items["confidence"]
    return out


def _writable(path: Path) -> None:
    if not path.parent.is_dir():
        raise UnwritableFileError(f"{path}: the folder {path.parent} does not exist")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        # the file is written beside and moved into place: that would replace a link or a device, not write to it
        raise UnwritableFileError(f"{path}: exists and is not a regular file (a link, a folder or a device); "
                                  "choose a new file name")


@contextmanager
def _replacing(path: Path):
    """Write to a hidden file beside ``path`` and move it into place when done, so a failed write (a full
    disk, no permission) leaves ``path`` as it was, no temporary file behind, and one readable error."""
    _writable(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise UnwritableFileError(f"{path}: cannot write: {error.strerror or error}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_export(items: pd.DataFrame, path: Path, fmt: str | None, *, labels: list[str],
                 model_version: int | None) -> int:
    """Write ``items`` (external_id, split, kind, text, image, data, label, n_votes, prediction, confidence)."""
    fmt = _format(path, fmt)
    with _replacing(path) as tmp:
        if fmt in ("csv", "jsonl", "parquet"):
            flat = _flat(items)
            if fmt == "csv":
                flat.to_csv(tmp, index=False)
            elif fmt == "parquet":
                flat.to_parquet(tmp, index=False)
            else:
                flat.to_json(tmp, orient="records", lines=True, force_ascii=False)
        else:
            with open(tmp, "w", encoding="utf-8") as out:
                if fmt == "labelstudio":
                    json.dump([_ls_task(r, model_version) for r in items.itertuples()], out, ensure_ascii=False)
                else:
                    for r in items.itertuples():
                        out.write(json.dumps(_prodigy_task(r, labels), ensure_ascii=False) + "\n")
    return len(items)


def _content(r) -> tuple[dict, str]:
    if r.kind == "text":
        return {"text": r.text}, "text"
    if r.kind == "image":
        return {"image": r.image}, "image"
    return dict(r.data or {}), "row"


def _ls_task(r, model_version) -> dict:
    data, to_name = _content(r)
    task = {"data": {"id": r.external_id, "split": r.split, **data}}

    def result(choice):
        return [{"from_name": "label", "to_name": to_name, "type": "choices", "value": {"choices": [choice]}}]

    if isinstance(r.prediction, str):
        task["predictions"] = [{"model_version": f"activelabel-v{model_version}", "score": float(r.confidence),
                                "result": result(r.prediction)}]
    if isinstance(r.label, str):
        task["annotations"] = [{"result": result(r.label)}]
    return task


def _prodigy_task(r, labels) -> dict:
    data, _ = _content(r)
    task = {**data, "options": [{"id": lab, "text": lab} for lab in labels],
            "meta": {"id": r.external_id, "split": r.split}}
    if isinstance(r.prediction, str):
        task["meta"] |= {"prediction": r.prediction, "score": round(float(r.confidence), 4)}
    if isinstance(r.label, str):
        task |= {"accept": [r.label], "answer": "accept"}
    return task


def write_answers(events: pd.DataFrame, path: Path) -> int:
    """Write the audit log of answer events; JSONL or Parquet by the file's suffix, CSV otherwise.

    ``events`` has the columns of :data:`ANSWER_COLUMNS` but ``retracted_by``,
    which is added here: the event that undid an answer, so either end of a
    retraction leads to the other. Times are UTC. Returns the row count.
    """
    _writable(path)  # before the work, so a wrong folder is said at once
    out = events.copy()
    link = out.dropna(subset=["retracts"])
    by = pd.Series(link["event"].to_numpy(), index=link["retracts"].astype(np.int64).to_numpy())
    out["retracted_by"] = out["event"].map(by).astype("Int64")
    out["retracts"] = out["retracts"].astype("Int64")
    out["time"] = pd.to_datetime(out["time"], utc=True)
    out = out[ANSWER_COLUMNS]
    suffix = path.suffix.lower()
    with _replacing(path) as tmp:
        if suffix == ".parquet":
            out.to_parquet(tmp, index=False)
        elif suffix in (".jsonl", ".ndjson"):
            out.assign(time=out["time"].map(lambda t: t.isoformat())).to_json(
                tmp, orient="records", lines=True, force_ascii=False)
        else:
            out.to_csv(tmp, index=False)
    return len(out)
