"""The README's Python quick start runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def quickstart() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Python quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the quick start has one python block"
    return blocks[0]


def test_readme_quickstart_runs(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.chdir(tmp_path)
    exec(compile(quickstart(), str(README), "exec"), {"__name__": "__quickstart__"})
    out = capsys.readouterr().out
    assert re.search(r"^test HIT@5: [0-9.]+$", out, flags=re.M), out
    top = re.search(r"^top 5 for (\S+) : \[(.*)\]$", out, flags=re.M)
    assert top and len(top.group(2).split(",")) == 5, out
    assert (tmp_path / "runs" / "quickstart" / "test_metrics.json").is_file()
