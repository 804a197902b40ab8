"""Projectors: processors that build read models in tables they own.

A projector's rows and its tracker position commit in one transaction per batch, so a
crash never leaves a half-applied batch and no event is applied twice. See
:class:`~esctl_lib.processing.processor.Processor` for handlers and ``tables``.
"""

from __future__ import annotations

from esctl_lib.processing.processor import Processor


class Projector(Processor):
    """A processor that owns tables (its read model) and writes them through ``tx``.

    Replaying one is safe: :meth:`reset` drops and recreates its tables with the tracker
    at 0 in one transaction, then processing rebuilds them.
    """

    kind = "projector"
