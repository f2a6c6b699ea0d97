"""Reference-policy strategies."""

from vlmalign.reference.base import NoReference, ReferencePolicy

__all__ = ["NoReference", "ReferencePolicy"]
