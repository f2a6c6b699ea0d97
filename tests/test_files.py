"""Crash-safety of the on-disk caches: nothing half-written is ever taken for finished."""

import pytest

from vlmalign.utils.files import atomic_directory, locked, remove_stale_scratch


def test_atomic_directory_appears_only_when_the_block_finishes(tmp_path):
    target = tmp_path / "base"
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as scratch:
            (scratch / "half.bin").write_text("x")
            raise RuntimeError("crash mid-build")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_directory(target) as scratch:
        (scratch / "model.bin").write_text("done")
    assert (target / "model.bin").read_text() == "done"


def test_scratch_left_by_a_killed_process_is_removed_under_the_lock(tmp_path):
    target = tmp_path / "base-abc"
    killed = tmp_path / ".base-abc.k1ll3d.tmp"  # what atomic_directory leaves after SIGKILL
    killed.mkdir()
    other = tmp_path / ".base-xyz.live.tmp"  # another target's build: not ours to touch
    other.mkdir()
    with locked(target):
        assert remove_stale_scratch(target) == [killed]
    assert not killed.exists() and other.exists()
