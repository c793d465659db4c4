"""The `gateway` command line: one entry point, `--help` on every subcommand, errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gateway.cli import build_parser, main
from gateway.procs import python
from tests.support import REPO
from tests.tiny import tiny_root

SUBCOMMANDS = [
    ["models"],
    ["train"],
    ["export"],
    ["inspect"],
    ["features"],
    ["features", "load"],
    ["features", "get"],
    ["stack"],
    ["models", "build"],
    ["spec", "check"],
    ["spec", "docs"],
    ["render"],
    ["bundle"],
    ["smoke"],
    ["release"],
]


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=[" ".join(w) for w in SUBCOMMANDS])
def test_every_subcommand_has_help(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*words, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: gateway {' '.join(words)}")


def test_top_level_help_lists_the_commands() -> None:
    out = subprocess.run(
        [python(), "-m", "gateway.cli", "--help"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for word in ("models", "train", "export", "inspect", "features", "stack"):
        assert f"    {word}" in out


def test_errors_are_one_line(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "/nonexistent/model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gateway: /nonexistent/model: neither a model version directory")
    assert "Traceback" not in err
    assert main(["features", "get", "ctr", "U1", "--root", str(REPO / "models")]) == 2
    assert "choose one with --entity" in capsys.readouterr().err


def test_a_missing_input_file_is_a_usage_error_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["export", "risk", "--saved-model", str(REPO), "--transformer", "nope.pkl", "--sample", "s.csv"])
    assert exc.value.code == 2
    assert "argument --transformer: nope.pkl: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["features", "load", "risk", "nope.csv"])
    assert exc.value.code == 2
    assert "argument FILE: nope.csv: no such file" in capsys.readouterr().err


def test_models_build_takes_names_after_its_options_and_skips_exported_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = build_parser().parse_args(["models", "build", "--force", "risk", "ctr"])
    assert args.names == ["risk", "ctr"] and args.force
    root = tiny_root(tmp_path)  # tiny: a published version, no fit code (as if exported)
    assert main(["models", "build", "--force", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "tiny: exported (no fit code), skipped" in out
    assert main(["models", "build", "tiny", "--force", "--root", str(root)]) == 2
    assert "tiny: no fit code at" in capsys.readouterr().err


def test_a_sparse_output_too_wide_to_densify_is_refused_with_the_remedy() -> None:
    from scipy import sparse

    from gateway.errors import ArtifactError
    from gateway.transformer.stage import MAX_DENSE_COLUMNS, dense

    narrow = sparse.csr_matrix(([1.0], ([0], [3])), shape=(2, 5))
    assert dense(narrow).tolist() == [[0, 0, 0, 1, 0], [0, 0, 0, 0, 0]]
    wide = sparse.csr_matrix((2, MAX_DENSE_COLUMNS + 1))
    with pytest.raises(ArtifactError, match="limit the one-hot categories"):
        dense(wide, "transformer.pkl")
