"""Packs: the folder that turns the runtime into one deployment's assistant."""

from edgepipe.pack.loader import IntentDef, Pack, load_pack

__all__ = ["IntentDef", "Pack", "load_pack"]
