"""edgepipe's own tiers in the tier registry (each module is imported when its tier is built)."""

from __future__ import annotations

from edgepipe.tiers.base import TIERS, Tier, TierContext


def _rules(context: TierContext) -> Tier:
    from edgepipe.tiers.rules import RulesTier

    return RulesTier.build(context)


def _local_model(context: TierContext) -> Tier | None:
    from edgepipe.tiers.local_model import build

    return build(context)


def _cloud(context: TierContext) -> Tier | None:
    from edgepipe.tiers.cloud import CloudTier

    return CloudTier.build(context)


def _resolve(context: TierContext) -> Tier | None:
    from edgepipe.tiers.resolve import build

    return build(context)


def _degraded(context: TierContext) -> Tier:
    from edgepipe.tiers.degraded import DegradedTier

    return DegradedTier.build(context)


TIERS.add("rules", _rules)
TIERS.add("local_model", _local_model)
TIERS.add("cloud", _cloud)
TIERS.add("resolve", _resolve)
TIERS.add("degraded", _degraded)

BUILTIN_TIERS = ("rules", "local_model", "cloud", "resolve", "degraded")

__all__ = ["BUILTIN_TIERS", "TIERS"]
