"""README.md's Python examples run as written, so the README cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_readme_has_python_examples() -> None:
    assert python_blocks()


def test_every_python_example_in_the_readme_runs(tmp_path: Path) -> None:
    for index, code in enumerate(python_blocks()):
        script = tmp_path / f"block_{index}.py"
        script.write_text(code, encoding="utf-8")
        result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                                cwd=tmp_path, timeout=120)
        assert result.returncode == 0, f"README block {index} failed:\n{result.stderr}"
