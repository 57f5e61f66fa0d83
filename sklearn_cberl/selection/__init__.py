"""Choosing CBERL's stages on validation data: :class:`CBERLStageSearch`."""

from ._stage_search import CBERLStageSearch, describe_config

__all__ = ["CBERLStageSearch", "describe_config"]
