"""A record's YAML (a run's config.yaml, its model's MLmodel) measured before anything expands.

YAML's anchors and aliases let a few hundred bytes stand for billions of values (a "billion
laughs": aliases nested nine deep). PyYAML builds them as shared references in an instant, but
OmegaConf copies every one: a rerun of such a config.yaml grew to gigabytes without a word, and
no signal stopped it. So a record is first read as YAML's event stream, where no value is built,
and refused when it is larger than a record ever is (bytes), nested deeper, or would expand to
more values than a record holds; lstmlab writes none with an alias at all (OmegaConf and MLflow
write each value out), so legitimate records are far inside these bounds.
"""

from __future__ import annotations

from pathlib import Path

import yaml

# A run's config.yaml is about 1.5 KB of some 60 values, 4 levels deep; an MLmodel is smaller.
MAX_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_VALUES = 20_000  # scalars and collections, each alias counted as the values it stands for

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where PyYAML has it: faster


def bounded_text(path: Path) -> str:
    """The text of the YAML file at `path`, once it is known to be small, shallow and to expand to
    few values; a ValueError (or UnicodeDecodeError) says why not, in words for a user."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ValueError(f"it is {size:,} bytes; a record is at most {MAX_BYTES:,}")
    text = path.read_bytes().decode("utf-8")
    check_events(text)
    return text


def check_events(text: str) -> None:
    """Walk the YAML events of `text`, counting what its aliases would expand to, and stop at the
    first bound passed (before the rest is even parsed)."""
    sizes: dict[str, int] = {}  # anchor → values it stands for
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, values so far) of each open collection
    total = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in sizes:
                raise ValueError(f"it refers to an undefined YAML anchor &{event.anchor}")
            values = sizes[event.anchor]
        elif isinstance(event, yaml.ScalarEvent):
            values = 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            open_nodes.append((event.anchor, 1))
            if len(open_nodes) > MAX_DEPTH:
                raise ValueError(f"it nests deeper than {MAX_DEPTH} levels; a record has a few")
            total += 1
            _too_many(total)
            continue
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, values = open_nodes.pop()
            if anchor is not None:
                sizes[anchor] = values
            if open_nodes:
                parent, count = open_nodes[-1]
                open_nodes[-1] = (parent, count + values)
            continue
        else:  # stream and document events
            continue
        total += values
        _too_many(total)
        if open_nodes:
            parent, count = open_nodes[-1]
            open_nodes[-1] = (parent, count + values)


def _too_many(total: int) -> None:
    if total > MAX_VALUES:
        raise ValueError(f"its YAML aliases (*name) expand to more than {MAX_VALUES:,} values; "
                         "a record holds a few dozen and no aliases")
