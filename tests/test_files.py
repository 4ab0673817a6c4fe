"""Reading import files: every malformed input names the file and the line."""

import json

import pytest

from activelabel.errors import EmptyFileError, MalformedFileError, UnreadableFileError
from activelabel.files import read_records


def write(path, content: bytes | str):
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_csv_lines_follow_quoted_newlines(tmp_path):
    """A quoted field spanning lines shifts the line numbers of the rows after it."""
    f = write(tmp_path / "a.csv", 'id,text\n1,"two\nlines"\n2,plain\n\n3,after blank\n')
    r = read_records(f)
    assert list(r.frame["id"]) == ["1", "2", "3"]
    assert list(r.lines) == [2, 4, 6]
    assert r.where(2) == f"{f}: line 6"


def test_csv_wrong_field_count_names_line(tmp_path):
    f = write(tmp_path / "a.csv", "id,text\n1,a\n2,b,extra\n3,c\n")
    with pytest.raises(MalformedFileError, match=r"a\.csv: line 3: expected 2 fields, found 3"):
        read_records(f)


def test_csv_unclosed_quote_is_malformed(tmp_path):
    f = write(tmp_path / "a.csv", 'id,text\n1,a\n2,"never closed\n3,c\n')
    with pytest.raises(MalformedFileError, match=r"a\.csv: line \d+"):
        read_records(f)


def test_jsonl_bad_line_names_line(tmp_path):
    f = write(tmp_path / "a.jsonl", '{"id": 1}\n\n{"id": 2,}\n')
    with pytest.raises(MalformedFileError, match=r"a\.jsonl: line 3: not valid JSON"):
        read_records(f)


def test_jsonl_non_object_line(tmp_path):
    f = write(tmp_path / "a.jsonl", '{"id": 1}\n[1, 2]\n')
    with pytest.raises(MalformedFileError, match="line 2: expected a JSON object, found list"):
        read_records(f)


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_wrong_encoding_names_line(tmp_path, suffix):
    """Latin-1 text is refused with the line of the first bad byte, not silently mangled."""
    body = "id,text\n1,ok\n2,café\n" if suffix == "csv" else '{"id": 1}\n{"id": "café"}\n'
    f = write(tmp_path / f"a.{suffix}", body.encode("latin-1"))
    with pytest.raises(MalformedFileError, match=rf"a\.{suffix}: line {3 if suffix == 'csv' else 2}: not UTF-8"):
        read_records(f)


def test_utf8_bom_is_accepted(tmp_path):
    f = write(tmp_path / "a.csv", "\ufeffid,text\n1,é\n".encode())
    assert list(read_records(f).frame.columns) == ["id", "text"]


@pytest.mark.parametrize("content", ["", "id,text\n", "\n\n"])
def test_empty_files(tmp_path, content):
    suffix = "jsonl" if content == "\n\n" else "csv"
    with pytest.raises(EmptyFileError, match="no rows|empty"):
        read_records(write(tmp_path / f"a.{suffix}", content))


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(UnreadableFileError, match="unknown format '.xlsx'"):
        read_records(write(tmp_path / "a.xlsx", "x"))
    with pytest.raises(UnreadableFileError, match="no such file"):
        read_records(tmp_path / "missing.csv")


def test_json_array_is_read_as_records(tmp_path):
    f = write(tmp_path / "a.json", json.dumps([{"data": {"id": "1"}, "annotations": []}]))
    r = read_records(f, "jsonl")
    assert r.unit == "element" and len(r.frame) == 1


def test_json_errors_name_the_line_and_column_where_they_are(tmp_path):
    f = write(tmp_path / "a.jsonl", '{"id": 1}\n{"id": "x", "text": \n')
    with pytest.raises(MalformedFileError, match=r"a\.jsonl: line 2: not valid JSON: Expecting value \(column 21\)"):
        read_records(f)
    f = write(tmp_path / "b.json", '\n\n\n[{"id": 1},\n {"id": 2}\n {"id": 3}]\n')
    with pytest.raises(MalformedFileError, match=r"b\.json: line 6: not valid JSON"):
        read_records(f)


def test_chunks_keep_json_values_as_written(tmp_path):
    """A null in one chunk must not turn that chunk's whole numbers into floats."""
    from activelabel.files import iter_records

    rows = [{"id": i, "x": None if i == 1 else i} for i in range(6)]
    f = write(tmp_path / "a.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    chunks = list(iter_records(f, chunk_rows=3))
    assert [c.frame["x"].tolist() for c in chunks] == [[0, None, 2], [3, 4, 5]]
    assert [list(c.lines) for c in chunks] == [[1, 2, 3], [4, 5, 6]]
