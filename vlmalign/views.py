"""View names that the data writes and the objectives read, named once below both layers.

KTO's unpaired examples (arXiv 2402.01306) carry their response under ``desirable`` or ``undesirable`` (the
label) and another example's response under ``mismatched`` (for KTO's reference point); ``vlmalign.data.unpaired``
builds them and ``vlmalign.objectives.kto`` scores them.
"""

UNPAIRED_VIEWS = ("desirable", "undesirable", "mismatched")
