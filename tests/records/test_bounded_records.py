"""A record is measured before it is built: YAML that would expand without bound, nest without end
or fill memory is refused from its event stream, and a recorded config may hold only keys this
lstmlab reads (issue 23, items 2 and 5). The commands that read records are in
test_tampered_records.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import make_config
from lstmlab.paths import config_dir
from lstmlab.pipeline.params import run_config
from lstmlab.records.bounded_yaml import MAX_BYTES, MAX_DEPTH, MAX_VALUES, bounded_text, check_events
from lstmlab.records.record_keys import unknown_key


def billion_laughs(levels: int = 9) -> str:
    """Nine values, then each level nine aliases of the one before: 9**levels values once built."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for before, name in zip("abcdefghijklmnop", "bcdefghijklmnopq"[: levels - 1]):
        lines.append(f"{name}: &{name} [{', '.join([f'*{before}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_is_refused_from_its_events_before_anything_is_built():
    text = billion_laughs()
    assert len(text) < 1000  # a few hundred bytes standing for 9**9 = 387,420,489 values
    with pytest.raises(ValueError, match=f"aliases .* expand to more than {MAX_VALUES:,} values"):
        check_events(text)
    small = billion_laughs(levels=2)  # 9 + 9 × 9 values: an alias or two is only counted
    check_events(small)
    assert len(yaml.safe_load(small)["b"]) == 9


def test_depth_size_and_undefined_anchors_are_refused(tmp_path: Path):
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    with pytest.raises(ValueError, match=f"nests deeper than {MAX_DEPTH} levels"):
        check_events(deep)
    with pytest.raises(ValueError, match="undefined YAML anchor &nowhere"):
        check_events("a: *nowhere\n")
    big = tmp_path / "config.yaml"
    big.write_text("a: " + "x" * MAX_BYTES + "\n")
    with pytest.raises(ValueError, match=f"it is {MAX_BYTES + 4:,} bytes; a record is at most {MAX_BYTES:,}"):
        bounded_text(big)
    undecodable = tmp_path / "latin1.yaml"
    undecodable.write_bytes("a: é\n".encode("latin-1"))
    with pytest.raises(UnicodeDecodeError):
        bounded_text(undecodable)


CONFIGS = [
    [], ["evaluation=walk_forward"], ["data=synthetic"], ["data=csv", "data.path=prices.csv"],
    *[[f"variant={path.stem}"] for path in sorted((Path(config_dir()) / "variant").glob("*.yaml"))],
    ["trainer.early_stopping.enabled=true", "+optimizer.beta_1=0.8", "+data.scaler.feature_range=[-1,1]"],
]


@pytest.mark.parametrize("overrides", CONFIGS, ids=lambda overrides: " ".join(overrides) or "default")
def test_every_config_lstmlab_records_reads_back_whole(tmp_path: Path, overrides: list[str]):
    """What `lstmlab train` records (run_config) is far inside the bounds and holds no unknown key."""
    recorded = tmp_path / "config.yaml"
    recorded.write_text(OmegaConf.to_yaml(run_config(make_config(*overrides))))
    text = bounded_text(recorded)
    assert unknown_key(yaml.safe_load(text)) is None


@pytest.mark.parametrize("change, unknown", [
    ({"data": {"foo": 1}}, "data.foo"),
    ({"trainer": {"early_stopping": {"warmup": 3}}}, "trainer.early_stopping.warmup"),
    ({"evaluation": {"gap": 5}}, "evaluation.gap"),
    ({"augment": {"noise": 0.1}}, "augment"),  # a section this lstmlab does not have
    ({"tracking": {"tags": ["a"]}}, "tracking.tags"),
    ({"aa": "a"}, None),  # a label (docs/evidence.md's A/A groups): nothing reads it
    ({"optimizer": {"beta_1": 0.8}, "data": {"scaler": {"clip": True}}}, None),  # arguments: the class checks them
])
def test_a_key_this_lstmlab_does_not_read_is_named(change: dict, unknown: str | None):
    config = OmegaConf.to_container(OmegaConf.merge(OmegaConf.create(run_config(make_config())), change))
    assert unknown_key(config) == unknown
