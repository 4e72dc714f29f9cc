"""The README's example runs and says what it prints."""
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs(capsys):
    text = README.read_text()
    code = re.search(r"```python\n(import numpy.*?)```", text, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "109260"
    assert "total parameters: 109,260" in out and out.rstrip().endswith("PASSED")


def test_readme_names_the_test_command():
    assert 'pip install -e ".[test]" && python -m pytest' in README.read_text()
    assert 'pip install -e ".[test]" && python -m pytest' in (README.parent / ".ci" / "run").read_text()
