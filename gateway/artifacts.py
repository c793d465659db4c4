"""Model version directories and their manifests: layout, hashing, verification.

A version directory ``models/<name>/<version>/`` holds what TF-Serving loads
(``saved_model.pb``, ``variables/``, ``assets.extra/``), the pickled feature
transformer and ``manifest.json``. The manifest records the sha256 of every
other file and the library versions the pickle was written with; the logic
service refuses to unpickle anything the manifest does not vouch for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import platform
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

from gateway.errors import ArtifactError

log = logging.getLogger("gateway.artifacts")
MANIFEST = "manifest.json"
# Libraries whose versions decide whether a pickle unpickles to the same object.
PICKLE_LIBRARIES = ("python", "scikit-learn", "numpy")
ENV_LIBRARIES = ("python", "scikit-learn", "numpy", "pandas", "tensorflow")


def list_versions(base: Path) -> list[int]:
    """Numeric version directories under ``base``, ascending (hidden/temp dirs skipped)."""
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def latest_version(base: Path) -> int | None:
    versions = list_versions(base)
    return versions[-1] if versions else None


def version_dir(base: Path, version: int) -> Path:
    """The directory of ``version``: TF-Serving accepts zero-padded names, so do we."""
    for p in base.iterdir() if base.is_dir() else []:
        if p.is_dir() and p.name.isdigit() and int(p.name) == version:
            return p
    raise ArtifactError(f"{base}: no version {version} (have {list_versions(base)})")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def hash_tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` except the manifest, keyed by POSIX relative path."""
    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def library_version(name: str) -> str:
    if name == "python":
        return platform.python_version()
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def environment() -> dict[str, str]:
    return {lib: library_version(lib) for lib in ENV_LIBRARIES}


def read_manifest(vdir: Path) -> dict[str, Any]:
    path = vdir / MANIFEST
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise ArtifactError(f"{path}: missing; this is not a published model version") from e
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{path}: unreadable manifest: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise ArtifactError(f"{path}: manifest has no 'files' table")
    return data


def verify_files(vdir: Path, manifest: dict[str, Any], only: list[str] | None = None) -> None:
    """Raise unless every listed file exists with the manifest's sha256."""
    files: dict[str, str] = manifest["files"]
    for rel in only if only is not None else sorted(files):
        expected = files.get(rel)
        path = vdir / rel
        if expected is None:
            raise ArtifactError(f"{path}: not listed in {vdir / MANIFEST}")
        if not path.is_file():
            raise ArtifactError(f"{path}: listed in the manifest but missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ArtifactError(
                f"{path}: sha256 {actual[:16]}... does not match the manifest's {expected[:16]}...; "
                "the file was changed after publishing"
            )


def audit(vdir: Path, manifest: dict[str, Any]) -> list[str]:
    """Every way the directory differs from its manifest (empty: it is exactly what was published)."""
    files: dict[str, str] = manifest["files"]
    present = {p.relative_to(vdir).as_posix() for p in vdir.rglob("*") if p.is_file() and p.name != MANIFEST}
    problems = [f"{rel}: listed in the manifest but missing" for rel in sorted(files.keys() - present)]
    problems += [f"{rel}: not listed in the manifest" for rel in sorted(present - files.keys())]
    for rel in sorted(files.keys() & present):
        if sha256_file(vdir / rel) != files[rel]:
            problems.append(f"{rel}: sha256 does not match the manifest (changed after publishing)")
    return problems


# Library versions a pickle records about itself: scikit-learn writes its version into every
# fitted estimator's state (``_sklearn_version``).
_PICKLED_VERSION_KEYS = {"_sklearn_version": "scikit-learn"}
_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
_MEMO_GETS = {"GET", "BINGET", "LONG_BINGET"}


def pickled_versions(data: bytes) -> dict[str, str]:
    """The library versions a pickle says it was written with, read from its opcodes (nothing is
    unpickled, so this works on a pickle that no longer loads). Several versions of one library
    (a pickle assembled from several environments) are joined with " + "."""
    import pickletools

    memo: dict[int, Any] = {}
    found: dict[str, set[str]] = {}
    last: Any = None  # the value the previous pushing opcode pushed
    previous: Any = None  # the value pushed before that one
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name in ("FRAME", "MARK"):
                continue
            if op.name == "MEMOIZE":
                memo[len(memo)] = last
                continue
            if op.name in _MEMO_PUTS:
                memo[int(str(arg))] = last
                continue
            value = memo.get(int(str(arg))) if op.name in _MEMO_GETS else arg
            previous, last = last, value
            if isinstance(previous, str) and previous in _PICKLED_VERSION_KEYS and isinstance(value, str):
                found.setdefault(_PICKLED_VERSION_KEYS[previous], set()).add(value)
    except (ValueError, IndexError):  # not a (complete) pickle: the loader says so
        pass
    return {lib: " + ".join(sorted(vs)) for lib, vs in found.items()}


def environment_pairs(manifest: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """(recorded, running) version of every library the manifest records."""
    recorded: dict[str, str] = manifest.get("environment", {})
    return {lib: (recorded[lib], library_version(lib)) for lib in ENV_LIBRARIES if lib in recorded}


def environment_drift(manifest: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The recorded libraries whose running version differs (Python compared by minor release)."""
    return {
        lib: (rec, run)
        for lib, (rec, run) in environment_pairs(manifest).items()
        if _comparable(lib, rec) != _comparable(lib, run)
    }


def _comparable(lib: str, version: str) -> str:
    # Pickles are portable across Python patch releases, not across minor ones.
    return ".".join(version.split(".")[:2]) if lib == "python" else version


def check_environment(manifest: dict[str, Any], allow_drift: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Refuse a pickle written by other library versions; return the drifts allowed."""
    recorded: dict[str, str] = manifest.get("environment", {})
    allowed: list[str] = []
    for lib in PICKLE_LIBRARIES:
        want = recorded.get(lib)
        have = library_version(lib)
        if want is None or _comparable(lib, want) == _comparable(lib, have):
            continue
        if lib in allow_drift:
            allowed.append(f"{lib} {want} -> {have}")
            continue
        raise ArtifactError(
            f"transformer was pickled with {lib} {want} but this process runs {lib} {have}; "
            f"rebuild the model version, or allow the drift explicitly (GATEWAY_ALLOW_DRIFT='[\"{lib}\"]')"
        )
    return allowed


_SAFE_ROOTS = frozenset({"sklearn", "numpy", "scipy", "pandas", "collections", "_codecs", "copyreg"})
# Of this package, only the transformer classes pickles are meant to reference: anything else
# (a process launcher, the CLI) would hand a crafted pickle a callable to run.
_SAFE_MODULES = frozenset({"gateway.transformer.classes"})
# Classes that moved since versions were published: their pickles name the old place.
MOVED: dict[tuple[str, str], tuple[str, str]] = {
    ("gateway.preprocessing", "CyclicalEncoder"): ("gateway.transformer.classes", "CyclicalEncoder"),
}
_SAFE_BUILTINS = frozenset(
    {
        "slice",
        "set",
        "frozenset",
        "complex",
        "range",
        "bytearray",
        "dict",
        "list",
        "tuple",
        "float",
        "int",
        "bool",
        "str",
        "bytes",
        "object",
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    """Second line of defence after the hash check: only data-science classes resolve."""

    def find_class(self, module: str, name: str) -> Any:
        module, name = MOVED.get((module, name), (module, name))
        root = module.split(".", 1)[0]
        if (
            (module == "builtins" and name in _SAFE_BUILTINS)
            or root in _SAFE_ROOTS
            or module in _SAFE_MODULES
        ):
            return super().find_class(module, name)
        raise ArtifactError(f"pickle references {module}.{name}, which is not an allowed class")


def safe_unpickle(f: BinaryIO) -> Any:
    return _RestrictedUnpickler(f).load()


def load_verified_pickle(
    vdir: Path, rel: str, manifest: dict[str, Any], allow_drift: list[str] | tuple[str, ...] = ()
) -> Any:
    """Hash-check, environment-check, then unpickle one file of a version directory."""
    verify_files(vdir, manifest, only=[rel])
    drift = check_environment(manifest, allow_drift)
    if drift:
        log.warning("%s: unpickling despite allowed library drift: %s", vdir / rel, ", ".join(drift))
    with (vdir / rel).open("rb") as f, warnings.catch_warnings():
        # A version drift reaching here was allowed and logged above: scikit-learn's warning is not news.
        warnings.filterwarnings("ignore", message="Trying to unpickle estimator")
        try:
            return safe_unpickle(f)
        except ArtifactError:
            raise
        except Exception as e:
            raise ArtifactError(f"{vdir / rel}: cannot unpickle: {type(e).__name__}: {e}") from e
