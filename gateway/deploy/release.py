"""What the pipeline does to an environment: point its overlay at the images it built."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from gateway.deploy.kube import dump
from gateway.errors import ConfigError

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def set_images(repo: Path, env: str, digests: dict[str, str], registry: str | None = None) -> list[str]:
    """Pin every image of ``deploy/k8s/overlays/<env>`` to its digest (``{"logic-risk": "sha256:..."}``).

    The same digests go to sit, stg and prd: promotion moves built images, never rebuilds.
    """
    path = repo / "deploy" / "k8s" / "overlays" / env / "kustomization.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: no such environment (render it with `gateway render`)")
    text = path.read_text()
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    doc: dict[str, Any] = yaml.safe_load(text)
    known = {img["name"] for img in doc.get("images", [])}
    unknown = sorted(set(digests) - known)
    if unknown:
        raise ConfigError(f"{path}: no image {unknown} (known: {sorted(known)})")
    changed = []
    for img in doc["images"]:
        digest = digests.get(img["name"])
        if digest is None:
            continue
        if not DIGEST.match(digest):
            raise ConfigError(f"{img['name']}: {digest!r} is not an image digest (sha256:<64 hex>)")
        img.pop("newTag", None)
        img["digest"] = digest
        if registry:
            img["newName"] = f"{registry}/{img['name']}"
        changed.append(f"{img['name']}@{digest}")
    path.write_text(header + dump(doc))
    return changed


def read_digests(path: Path) -> dict[str, str]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f'{path}: expected {{"logic-risk": "sha256:...", ...}}')
    return data
