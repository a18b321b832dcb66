"""How a line counts things: '1 run', '2 runs'. No imports, so any module may use it, the Hydra
plugins included; a count that can be 1 is written with it, never as f"{n} runs"."""


def count(n: int, noun: str) -> str:
    """'1 run', '2 runs', '0 runs' (nouns with a plain -s plural: run, job, trial, row, fold, point)."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
