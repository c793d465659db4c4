"""Atomic publishing: a poller watching the base directory only ever sees complete versions."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from gateway import artifacts
from gateway.errors import ArtifactError
from gateway.saver import publish

FILES = {
    "saved_model.pb": 300_000,
    "variables/variables.data-00000-of-00001": 600_000,
    "transformer.pkl": 50_000,
}


def _write_version_files(root: Path, seed: int) -> None:
    for rel, size in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            for _ in range(0, size, 50_000):  # written in pieces, as a real exporter does
                f.write(os.urandom(50_000))
                f.flush()


class Poller(threading.Thread):
    """Scans ``base`` like TF-Serving's file-system source; checks every version it sees."""

    def __init__(self, base: Path) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.stop = threading.Event()
        self.cond = threading.Condition()
        self.seen: set[int] = set()
        self.broken: list[str] = []
        self.scans = 0

    def wait_full_scan(self, timeout: float = 30) -> bool:
        """Wait until a scan that started after this call has finished."""
        with self.cond:
            target = self.scans + 2  # the scan under way may have listed the directory already
            return self.cond.wait_for(lambda: self.scans >= target, timeout)

    def check(self, version: int) -> None:
        vdir = artifacts.version_dir(self.base, version)
        manifest = artifacts.read_manifest(vdir)
        artifacts.verify_files(vdir, manifest)
        problems = artifacts.audit(vdir, manifest)
        if problems:
            raise ArtifactError("; ".join(problems))

    def run(self) -> None:
        while not self.stop.is_set():
            for v in artifacts.list_versions(self.base):
                if v in self.seen:
                    continue
                try:
                    self.check(v)
                    self.seen.add(v)
                except (ArtifactError, OSError) as e:
                    self.broken.append(f"version {v}: {e}")
                    self.seen.add(v)
            with self.cond:
                self.scans += 1
                self.cond.notify_all()


def test_a_poller_never_sees_a_half_written_version(tmp_path: Path) -> None:
    base = tmp_path / "m"
    poller = Poller(base)
    poller.start()
    try:
        for i in range(25):
            staging = publish.staging_dir(base)
            _write_version_files(staging, i)
            publish.write_manifest(staging, {"model": "m"})
            publish.publish(staging, base)
            if i % 5 == 4:  # make sure scans interleave with publishing, whatever the scheduler does
                assert poller.wait_full_scan()
        assert poller.wait_full_scan()
    finally:
        poller.stop.set()
        poller.join(30)
    assert poller.broken == []
    assert sorted(poller.seen) == list(range(1, 26))
    assert not [p for p in base.iterdir() if p.name.startswith(publish.STAGING_PREFIX)]


def test_control_writing_in_place_is_caught_by_the_same_poller(tmp_path: Path) -> None:
    """Without staging + rename the poller does catch versions mid-write, so the test above can fail."""
    base = tmp_path / "m"
    base.mkdir()
    poller = Poller(base)
    poller.start()
    try:
        for i in range(1, 4):
            vdir = base / str(i)
            vdir.mkdir()
            assert poller.wait_full_scan()  # the poller looks while the directory is still empty
            _write_version_files(vdir, i)
            publish.write_manifest(vdir, {"model": "m"})
    finally:
        poller.stop.set()
        poller.join(30)
    assert len(poller.broken) == 3
    assert all("manifest.json: missing" in b for b in poller.broken)


def test_publishing_an_existing_version_number_is_refused(tmp_path: Path) -> None:
    base = tmp_path / "m"
    for _ in range(2):
        staging = publish.staging_dir(base)
        (staging / "x").write_text("1")
        publish.write_manifest(staging, {})
        if artifacts.list_versions(base):
            with pytest.raises(FileExistsError, match="version 1 is already published"):
                publish.publish(staging, base, version=1)
        else:
            assert publish.publish(staging, base, version=1)[0] == 1
    assert sorted(p.name for p in base.iterdir()) == ["1"]  # the refused staging dir is gone
