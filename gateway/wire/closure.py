"""The TensorFlow files the logic tier needs: its message modules, found by importing it.

The logic image carries no TensorFlow runtime, only the generated ``*_pb2`` modules that
``gateway.wire.protos`` imports (and what they import, with their empty sub-package
initialisers), under a ``tensorflow`` directory without ``tensorflow/__init__.py``: a
namespace package the protos shim finds, with no runtime initialiser to run. Computed at
build time, never listed by hand::

    python -m gateway.wire.closure --from SITE_WITH_TENSORFLOW --into TARGET_SITE
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
import gateway.wire.protos
print(json.dumps(sorted(m.__file__ for name, m in sys.modules.items()
                        if name.startswith("tensorflow.") and getattr(m, "__file__", None))))
"""


def closure(tf_site: Path) -> list[Path]:
    """Files under ``tf_site/tensorflow`` that importing the logic tier's protos loads."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tf_site), *sys.path])}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    files = [Path(f) for f in json.loads(out.stdout)]
    root = (tf_site / "tensorflow").resolve()
    outside = [f for f in files if not f.resolve().is_relative_to(root)]
    if outside:
        raise RuntimeError(f"tensorflow modules loaded from outside {root}: {outside[:3]}")
    return sorted(f.resolve().relative_to(tf_site.resolve()) for f in files)


def copy(tf_site: Path, into: Path) -> list[Path]:
    """Copy the closure into ``into`` (a site-packages directory), ``tensorflow/__init__.py`` never."""
    rels = [r for r in closure(tf_site) if r != Path("tensorflow/__init__.py")]
    for rel in rels:
        (into / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(tf_site / rel, into / rel)
    return rels


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--from", dest="source", type=Path, required=True, help="a site-packages holding tensorflow"
    )
    ap.add_argument("--into", type=Path, required=True, help="the site-packages to copy the modules into")
    args = ap.parse_args(argv)
    files = copy(args.source, args.into)
    print(f"{len(files)} TensorFlow message modules copied into {args.into}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
