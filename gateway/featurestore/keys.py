"""Redis key layout of the feature store: the one place it is defined.

Layout (``<...>`` are values, ``{...}`` is a literal Redis Cluster hash tag)::

    gw:<model>:<entity>:live                          alias: id of the live snapshot (a decimal string)
    gw:<model>:<entity>:seq                           counter that hands out snapshot ids (INCR)
    gw:<model>:<entity>:snapshots                     sorted set of snapshot ids ever started (score = id)
    gw:<model>:<entity>:<snap>:meta                   hash: state (loading|complete), rows, keys, bytes,
                                                      source, started_at, loaded_at, updated_at,
                                                      generation (+1 after each incremental load)
    gw:<model>:<entity>:<snap>:<view>:{<entity>:<id>} one entity's data in one view:
                                                      a hash of field -> value (kind: hash), or
                                                      packed little-endian float32 (kind: vector)

Example: user ``U000042`` of model ``ctr`` in snapshot 3::

    gw:ctr:user:live                                  "3"
    gw:ctr:user:3:user_profile:{user:U000042}         hash {age: "34.0", segment: "seg_5", ...}
    gw:ctr:item:3:item_embedding:{item:I00007}        128 bytes = 32 x float32 little-endian

Why this shape:

* Every key of one entity instance ends in the same hash tag ``{<entity>:<id>}``,
  so a user's (or an item's) views, in every snapshot, land on one cluster slot.
* Readers resolve the alias, then read every key under that one snapshot, so
  they never mix two; a bulk load writes a whole new snapshot and then moves the
  alias with one ``SET``. Snapshots other than the live one are deleted by SCAN
  over :func:`snapshot_prefix` (the meta hash shares the prefix).
* Vectors are raw bytes, not a hash or a JSON list: one ``MGET`` returns many
  of them and ``numpy.frombuffer`` decodes each without parsing.
* Hash values are text (``repr`` of a float, decimal int, UTF-8 string) so
  ``redis-cli`` shows them as they are.

Names (model, entity, view) are restricted to ``[a-z0-9_]`` by :func:`check_name`,
so no name contains ``:`` or a brace; ids are used verbatim (they come last and
inside the tag, so a ``:`` in an id cannot be confused with a separator).
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


def seq_key(model: str, entity: str) -> str:
    return f"{PREFIX}:{model}:{entity}:seq"


def snapshots_key(model: str, entity: str) -> str:
    return f"{PREFIX}:{model}:{entity}:snapshots"


GENERATION_FIELD = "generation"
"""Field of the meta hash an incremental load increments once it has written its keys
(absent: 0). A snapshot's data keys change only then, so (snapshot, generation)
names an exact state of its data, which is what workers key their caches on."""


def meta_key(model: str, entity: str, snapshot: int) -> str:
    return f"{PREFIX}:{model}:{entity}:{snapshot}:meta"


def snapshot_prefix(model: str, entity: str, snapshot: int) -> str:
    """Common prefix of every key of one snapshot, its meta hash included (for SCAN-based clean-up)."""
    return f"{PREFIX}:{model}:{entity}:{snapshot}:"


def hash_tag(entity: str, entity_id: str) -> str:
    return "{" + entity + ":" + entity_id + "}"


def data_key(model: str, entity: str, snapshot: int, view: str, entity_id: str) -> str:
    return f"{PREFIX}:{model}:{entity}:{snapshot}:{view}:{hash_tag(entity, entity_id)}"


def data_keys(model: str, entity: str, snapshot: int, view: str, entity_ids: list[str]) -> list[str]:
    """``data_key`` for many ids of one view at once (the request path builds hundreds)."""
    head = f"{PREFIX}:{model}:{entity}:{snapshot}:{view}:{{{entity}:"
    return [head + i + "}" for i in entity_ids]
