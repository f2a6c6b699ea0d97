"""Crash safety: atomic checksummed checkpoints, exact resume, preemption, numerical guards."""
