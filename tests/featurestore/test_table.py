"""Entity tables are validated in full before anything is written; problems name their line."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gateway.featurestore.table import BadRows, encode, read_table, vector_matrix
from tests.featurestore.support import DIM, small_spec, users

HEADER = "id,age,visits,tier,emb_0,emb_1,emb_2,emb_3\n"


def _csv(tmp_path: Path, body: str, name: str = "user.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


def test_good_csv_encodes_every_row(tmp_path: Path) -> None:
    path = _csv(tmp_path, "a,31.5,3,gold,1,2,3,4\nb,40,0,basic,0.5,-1,0,2\n")
    enc = encode(small_spec(), "user", read_table(path))
    assert enc.ids == ["a", "b"]
    assert enc.hashes["profile"] == [["31.5", "3", "gold"], ["40.0", "0", "basic"]]
    assert np.frombuffer(enc.vectors["emb"][1], "<f4").tolist() == [0.5, -1.0, 0.0, 2.0]
    assert enc.vectors["emb"][0] == np.asarray([1, 2, 3, 4], "<f4").tobytes()


def test_bad_rows_are_reported_by_line(tmp_path: Path) -> None:
    body = (
        "a,31,3,gold,1,2,3,4\n"  # line 2: fine
        "b,abc,3,gold,1,2,3,4\n"  # line 3: age not a number
        "c,30,2.5,gold,1,2,3,4\n"  # line 4: visits not an integer
        ",30,1,gold,1,2,3,4\n"  # line 5: empty id
        "a,30,1,gold,1,2,3,4\n"  # line 6: duplicate of line 2
        "e,30,1,,1,2,3,4\n"  # line 7: empty string value
        "f,30,1,gold,1,nan,3,4\n"  # line 8: non-finite vector
        "g,inf,1,gold,1,2,3,4\n"  # line 9: infinite number
    )
    with pytest.raises(BadRows) as exc:
        encode(small_spec(), "user", read_table(_csv(tmp_path, body)))
    where = {(w, c) for w, c, _ in exc.value.problems}
    assert where == {
        ("line 3", "age"),
        ("line 4", "visits"),
        ("line 5", "id"),
        ("line 6", "id"),
        ("line 7", "tier"),
        ("line 8", "emb"),
        ("line 9", "age"),
    }
    msg = str(exc.value)
    assert "line 3: age: 'abc' is not a finite number" in msg
    assert "duplicate id 'a' (first at line 2)" in msg
    assert "nothing was written" in msg


def test_one_short_line_does_not_hide_the_files_other_problems(tmp_path: Path) -> None:
    body = (
        "a,31,3,gold,1,2,3,4\n"  # line 2: fine
        "b,1,2\n"  # line 3: short
        "c,inf,1,gold,1,2,3,4\n"  # line 4
        "d,nan,1,gold,1,2,3,4\n"  # line 5: each problem shows its own cell
        'e,"multi\nline",1,gold,1,2,3,4\n'  # lines 6-7: one record over two lines
        "f,abc,1,gold,1,2,3,4\n"  # line 8
    )
    with pytest.raises(BadRows) as exc:
        encode(small_spec(), "user", read_table(_csv(tmp_path, body)))
    assert exc.value.problems == [
        ("line 3", "-", "3 cells, header has 8"),
        ("line 4", "age", "'inf' is not a finite number"),
        ("line 5", "age", "'nan' is not a finite number"),
        ("line 6", "age", "'multi\\nline' is not a finite number"),
        ("line 8", "age", "'abc' is not a finite number"),
    ]


def test_empty_cells_take_the_declared_default_where_the_view_allows_it(tmp_path: Path) -> None:
    body = "a,,3,gold,1,2,3,4\nb,40,NA,,1,2,3,4\nc,41,2,NA,1,2,3,4\n"
    with pytest.raises(BadRows) as exc:
        encode(small_spec(), "user", read_table(_csv(tmp_path, body)))
    assert [(w, c) for w, c, _ in exc.value.problems] == [
        ("line 2", "age"),
        ("line 3", "visits"),
        ("line 3", "tier"),
    ]
    assert "empty value; `missing: default` on the view would store the default" in str(exc.value)
    spec = small_spec(missing="default", missing_marker="NA")
    enc = encode(spec, "user", read_table(_csv(tmp_path, body)))
    assert enc.hashes["profile"] == [["-1.0", "3", "gold"], ["40.0", "0", "none"], ["41.0", "2", "none"]]


def test_a_marker_that_is_not_declared_is_a_value(tmp_path: Path) -> None:
    with pytest.raises(BadRows, match="line 2: visits: 'NA' is not an integer"):
        encode(small_spec(missing="default"), "user", read_table(_csv(tmp_path, "a,1,NA,gold,1,2,3,4\n")))


def test_gzipped_csv(tmp_path: Path) -> None:
    path = tmp_path / "user.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write(HEADER + "a,31,3,gold,1,2,3,4\n")
    assert encode(small_spec(), "user", read_table(path)).ids == ["a"]


def test_every_missing_column_is_named_with_the_rows_problems(tmp_path: Path) -> None:
    path = tmp_path / "user.csv"
    path.write_text("id,age,tier,emb_0\na,x,gold,1\n")
    with pytest.raises(BadRows) as exc:
        encode(small_spec(), "user", read_table(path))
    assert exc.value.problems == [
        ("header", "visits", "no such column (a field of view 'profile')"),
        ("header", "emb", "vector columns emb_0..emb_3 lack ['emb_1', 'emb_2', 'emb_3']"),
        ("line 2", "age", "'x' is not a finite number"),
    ]


def test_empty_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no data rows"):
        encode(small_spec(), "user", read_table(_csv(tmp_path, "")))


def test_parquet_list_column_and_row_numbers(tmp_path: Path) -> None:
    frame = users(5).drop(columns=[f"emb_{k}" for k in range(DIM)])
    frame["emb"] = [np.arange(DIM, dtype=np.float32) + i for i in range(5)]
    frame.loc[3, "emb"] = np.zeros(DIM + 1, dtype=np.float32)  # wrong dimension
    frame["extra"] = 1
    path = tmp_path / "user.parquet"
    frame.to_parquet(path)
    with pytest.raises(BadRows) as exc:
        encode(small_spec(), "user", read_table(path))
    assert exc.value.problems == [("row 4", "emb", f"expected {DIM} numbers, got {DIM + 1}")]
    frame.loc[3, "emb"] = np.ones(DIM, dtype=np.float32)
    frame.to_parquet(path)
    enc = encode(small_spec(), "user", read_table(path))
    assert enc.ignored_columns == ["extra"]
    assert np.frombuffer(enc.vectors["emb"][2], "<f4").tolist() == [2.0, 3.0, 4.0, 5.0]


def test_many_problems_are_summarised(tmp_path: Path) -> None:
    body = "".join(f"u{i},x,1,gold,1,2,3,4\n" for i in range(100))
    with pytest.raises(BadRows) as exc:
        encode(small_spec(), "user", read_table(_csv(tmp_path, body)))
    assert exc.value.total == 100 and len(exc.value.problems) == 20
    assert "... and 80 more" in str(exc.value)


def test_floats_round_trip_exactly(tmp_path: Path) -> None:
    values = [0.1, 1e-300, 123456789.123456789, -2.5e17]
    frame = pd.DataFrame({"id": list("abcd"), "age": values, "visits": [1, 2, 3, 4], "tier": list("wxyz")})
    for k in range(DIM):
        frame[f"emb_{k}"] = 0.0
    enc = encode(small_spec(), "user", frame)
    assert [float(row[0]) for row in enc.hashes["profile"]] == values


def test_vector_matrix_reads_both_layouts() -> None:
    frame = users(3)
    spec = small_spec()
    mat = vector_matrix(frame, spec.view("emb"))
    listed = pd.DataFrame({"emb": list(mat)})
    np.testing.assert_array_equal(vector_matrix(listed, spec.view("emb")), mat)
    assert mat.dtype == np.float32 and mat.shape == (3, DIM)


def test_csv_with_bom_and_a_vector_column(tmp_path: Path) -> None:
    path = tmp_path / "user.csv"
    path.write_bytes('\ufeffid,age,visits,tier,emb\na,1,2,gold,"[1, 2, 3, 4]"\nb,1,2,gold,5 6 7 8\n'.encode())
    enc = encode(small_spec(), "user", read_table(path))
    assert enc.ids == ["a", "b"]
    assert np.frombuffer(enc.vectors["emb"][1], "<f4").tolist() == [5.0, 6.0, 7.0, 8.0]
    path.write_text("id,age,visits,tier,emb\na,1,2,gold,1 2 x 4\n")
    with pytest.raises(BadRows, match="line 2: emb: '1 2 x 4' is not a list of numbers"):
        encode(small_spec(), "user", read_table(path))
