"""Redis key layout of the feature store: the one place it is defined.

Layout (``<...>`` are values, ``{...}`` is a literal Redis Cluster hash tag)::

    gw:<model>:<entity>:live                          alias: id of the live snapshot
    gw:<model>:<entity>:snapshots                     sorted set of snapshot ids (score = id)
    gw:<model>:<entity>:<snap>:meta                   hash: rows, bytes, source, loaded_at
    gw:<model>:<entity>:<snap>:<view>:{<entity>:<id>} one entity's data in one view:
                                                      a hash (kind: hash) or a packed
                                                      little-endian float32 string (kind: vector)

Every key of one entity instance ends in the same hash tag ``{<entity>:<id>}``,
so a user's (or an item's) views land on one cluster slot. Readers resolve the
alias, then read every key under that one snapshot, so they never mix two.
Names (model, entity, view) are restricted to ``[a-z0-9_]`` by :func:`check_name`;
ids are used verbatim.
"""

from __future__ import annotations

import re

PREFIX = "gw"
_NAME = re.compile(r"^[a-z0-9_]{1,64}$")


def check_name(kind: str, name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"{kind} name {name!r} must match [a-z0-9_]{{1,64}}")
    return name


def alias_key(model: str, entity: str) -> str:
    return f"{PREFIX}:{model}:{entity}:live"


def snapshots_key(model: str, entity: str) -> str:
    return f"{PREFIX}:{model}:{entity}:snapshots"


def meta_key(model: str, entity: str, snapshot: int) -> str:
    return f"{PREFIX}:{model}:{entity}:{snapshot}:meta"


def snapshot_prefix(model: str, entity: str, snapshot: int) -> str:
    """Common prefix of every data key in one snapshot (for SCAN-based clean-up)."""
    return f"{PREFIX}:{model}:{entity}:{snapshot}:"


def hash_tag(entity: str, entity_id: str) -> str:
    return "{" + entity + ":" + entity_id + "}"


def data_key(model: str, entity: str, snapshot: int, view: str, entity_id: str) -> str:
    return f"{PREFIX}:{model}:{entity}:{snapshot}:{view}:{hash_tag(entity, entity_id)}"
