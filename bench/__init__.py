"""Benchmark programs: each prints numbers beside a baseline measured in the same run."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
