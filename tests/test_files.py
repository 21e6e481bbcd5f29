"""Atomic writes keep the permissions a plain write would give (not mkstemp's 0600)."""

from __future__ import annotations

import os
import stat

import pytest

from mgnm_pyg.files import atomic_directory, atomic_write_text


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_and_folder_follow_the_umask(tmp_path, umask_022):
    atomic_write_text(tmp_path / "a.json", "{}")
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    assert _mode(tmp_path / "a.json") == _mode(plain) == 0o644
    with atomic_directory(tmp_path / "data") as tmp:
        (tmp / "x").write_text("1")
    os.mkdir(tmp_path / "plain-dir")
    assert _mode(tmp_path / "data") == _mode(tmp_path / "plain-dir") == 0o755
    assert (tmp_path / "data" / "x").read_text() == "1"
    assert not list(tmp_path.glob(".*tmp"))


def test_a_replaced_file_keeps_its_mode(tmp_path, umask_022):
    target = tmp_path / "notes.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    atomic_write_text(target, "new")
    assert (target.read_text(), _mode(target)) == ("new", 0o640)
