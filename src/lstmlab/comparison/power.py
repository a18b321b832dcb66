"""The strength of an answer: the smallest effect these seeds detect, and the seeds an effect needs.

"No evidence" alone cannot tell "no effect" from "could not have seen one". So every group also
gets, from the seeds' own spread (comparison.seeds: the pooled sd of log test RMSE):

- `mde`: the smallest change of test RMSE (as a ratio − 1) that the verdict detects with
  probability POWER with this many seeds on each side;
- `seeds_needed`: the seeds per group (equal on both sides) that detect `--effect` (5 %) with
  probability POWER.

Both plan for the strictest level Holm applies, alpha / (groups tested): the level a group's
test meets when it is the one that differs. The power is the two-sided t-test's, from the
noncentral t distribution (df = n + n_base − 2, the pooled-variance test that Welch's matches
when the spreads are alike). By hand from scipy's `nct` rather than statsmodels'
`TTestIndPower`: the same numbers (the tests check it) without the second of import it costs
every compare.
"""

from __future__ import annotations

import math
from functools import lru_cache

from scipy import optimize, stats

from lstmlab.comparison.defaults import EFFECT, MARGIN

__all__ = ["EFFECT", "MARGIN", "POWER", "mde", "power", "seeds_needed"]

POWER = 0.8
MOST_SEEDS = 100_000  # seeds_needed beyond this is reported as this (an effect far inside the noise)
LARGE = 200  # seeds beyond which seeds_needed takes the normal approximation


def power(delta: float, sd: float, n: int, n_base: int, alpha: float) -> float:
    """Probability that the two-sided t-test at `alpha` rejects when the true difference of mean
    log RMSE is `delta` and the seeds' sd of log RMSE is `sd`."""
    df = n + n_base - 2
    ncp = delta / (sd * math.sqrt(1 / n + 1 / n_base))
    critical = stats.t.ppf(1 - alpha / 2, df)
    found = float(stats.nct.sf(critical, df, ncp) + stats.nct.cdf(-critical, df, ncp))
    return 1.0 if math.isnan(found) else found  # scipy's nct gives up (NaN) only far beyond any critical value


def mde(sd: float, n: int, n_base: int, alpha: float, target: float = POWER) -> float:
    """The smallest change of RMSE (ratio − 1, upwards) detected with probability `target`; NaN
    without two seeds a side or a spread."""
    if n < 2 or n_base < 2 or not sd > 0 or not math.isfinite(sd):
        return math.nan
    return math.expm1(sd * standard_mde(n, n_base, alpha, target))


@lru_cache(maxsize=4096)
def standard_mde(n: int, n_base: int, alpha: float, target: float = POWER) -> float:
    """The smallest difference of mean log RMSE, in units of the seeds' sd, detected with
    probability `target`. The power depends on the difference only through difference / sd, so
    this is computed once per group size: a study of hundreds of groups has a few sizes."""
    reach = 1.0  # doubled until the power is reached: the root lies between reach / 2 and reach
    while power(reach, 1.0, n, n_base, alpha) < target:
        reach *= 2
    return float(optimize.brentq(lambda d: power(d, 1.0, n, n_base, alpha) - target, 0.0, reach, xtol=1e-10))


def seeds_needed(sd: float, effect: float, alpha: float, target: float = POWER) -> float:
    """Seeds per group (both groups alike) to detect a change of `effect` (0.05: 5 %) with
    probability `target`; NaN without a spread, at least 2, at most MOST_SEEDS."""
    if not sd > 0 or not math.isfinite(sd) or not effect > 0:
        return math.nan
    wanted = math.log1p(effect) / sd  # the difference to detect, in units of the seeds' sd
    # Beyond LARGE seeds the normal approximation with Guenther's correction for the t-test,
    # 2 (z_(1-alpha/2) + z_power)² / wanted² + z_(1-alpha/2)² / 4, gives the t-test's answer (the
    # tests check it against statsmodels) at a fraction of the noncentral t's cost there.
    z = stats.norm.ppf(1 - alpha / 2)
    normal = math.ceil(2 * (z + stats.norm.ppf(target)) ** 2 / wanted**2 + z**2 / 4)
    if normal > LARGE:
        return float(min(normal, MOST_SEEDS))
    reached = lambda n: standard_mde(n, n, alpha, target) <= wanted  # noqa: E731 - the detectable one shrinks as n grows
    if reached(2):
        return 2.0
    low, high = 2, 4
    while not reached(high):  # doubling, then bisection
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if reached(middle) else (middle, high)
    return float(high)
