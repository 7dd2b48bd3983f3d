"""The policy a :class:`~veil.config.Config` asks for, built here from the config alone.

Everyone is anonymized (:class:`~veil.policy.base.AnonymizeAll` at the operating threshold);
each distance or identity flag adds a rule that may keep a face visible, and a face stays
visible only if every rule keeps it (:class:`~veil.policy.base.AllMustKeep`). The stages
that annotate what the rules read (distance, identity) are built by the pipeline; checks that
need them (is that name enrolled?) happen there.
"""

from __future__ import annotations

from ..config import Config
from .base import AllMustKeep, AnonymizeAll, Rule

__all__ = ["build_policy", "build_rules"]


def build_rules(config: Config) -> list[Rule]:
    """The distance rules, then the identity rule, the config's flags ask for."""
    rules: list[Rule] = []
    depth, ident = config.depth, config.identify
    if depth.only_beyond is not None:
        from .distance import OnlyBeyond

        rules.append(OnlyBeyond(depth.only_beyond, depth.hysteresis))
    if depth.keep_nearest is not None:
        from .distance import KeepNearest

        rules.append(KeepNearest(depth.keep_nearest, depth.hysteresis))
    if ident.active:
        from .identity import OnlyIdentities, SpareIdentities

        rules.append(OnlyIdentities(list(ident.only), ident.name_hidden) if ident.only
                     else SpareIdentities(None if ident.spare_enrolled else list(ident.spare), ident.name_hidden))
    return rules


def build_policy(config: Config) -> AllMustKeep:
    return AllMustKeep(AnonymizeAll(config.detect.threshold), build_rules(config))
