"""The `gateway` command line: one entry point, `--help` on every subcommand, errors without tracebacks."""

from __future__ import annotations

import os
import subprocess

import pytest

from gateway.cli import build_parser, main
from gateway.procs import python
from tests.support import REPO

SUBCOMMANDS = [
    ["models"],
    ["train"],
    ["export"],
    ["inspect"],
    ["features"],
    ["features", "load"],
    ["features", "get"],
    ["stack"],
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
    assert main(["features", "get", "ctr", "U1", "--root", str(REPO / "models")]) == 1
    assert "choose one with --entity" in capsys.readouterr().err
