"""The documentation site (mkdocs.yml, docs/): it builds with ``--strict``, documents every public name,
shows every tutorial with its stored outputs and the README's commands on the home page, renders the
docstrings' reST roles, and the walk-through of docs/extending.md runs as written."""
import html
import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
import types
import zlib

import pytest

import nnumpy
from conftest import ROOT, require_package

pytestmark = pytest.mark.backend_independent    # the site is the same whatever the backend


def _text(page):
    """A page's visible text: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built as CI builds it (``mkdocs build --strict``), and the build's log."""
    require_package("mkdocs", "docs")
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out)], capture_output=True, text=True, cwd=out, env=env, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log[-6000:]}"
    return out, log


def test_the_build_log_is_clean(site):
    _, log = site
    noise = [line for line in log.splitlines()
             if "WARNING" in line or "contains a link" in line or "not found" in line or "not included" in line]
    assert not noise, "\n".join(noise)


def public_modules():
    """nnumpy and every module below it whose name has no part starting with "_"."""
    names = [info.name for info in pkgutil.walk_packages(nnumpy.__path__, "nnumpy.")
             if not any(part.startswith("_") for part in info.name.split("."))]
    return [nnumpy] + [importlib.import_module(n) for n in sorted(names)]


def read_inventory(path):
    """The names in a Sphinx objects.inv (version 2): four header lines, then zlib."""
    raw = path.read_bytes()
    header, rest = raw.split(b"\n", 4)[:4], raw.split(b"\n", 4)[4]
    assert header[0] == b"# Sphinx inventory version 2", header
    names = set()
    for line in zlib.decompress(rest).decode("utf-8").splitlines():
        match = re.match(r"(.+?)\s+(\S+:\S+)\s+(-?\d+)\s+(\S*)\s+(.*)", line)
        assert match, f"unparsable inventory line {line!r}"
        names.add(match.group(1))
    return names


def test_every_public_name_is_documented(site):
    out, _ = site
    documented = read_inventory(out / "objects.inv")
    missing, checked = [], 0
    for mod in public_modules():
        for name in getattr(mod, "__all__", None) or ():
            obj = getattr(mod, name)
            accepted = {f"{mod.__name__}.{name}"}
            if isinstance(obj, types.ModuleType):
                accepted.add(obj.__name__)
            elif isinstance(getattr(obj, "__module__", None), str) and isinstance(getattr(obj, "__qualname__", None),
                                                                                  str):
                accepted.add(f"{obj.__module__}.{obj.__qualname__}")
            checked += 1
            if not accepted & documented:
                missing.append(f"{mod.__name__}.{name}")
    assert checked > 400, f"only {checked} public names found: the walk of the package is broken"
    assert not missing, f"{len(missing)} public names have no documentation on the site:\n" + "\n".join(missing)


def test_one_api_page_per_public_subpackage_or_module(site):
    out, _ = site
    pages = {p.stem for p in (out / "api").glob("*.html") if p.name != "index.html"}
    expected = {m.__name__ for m in public_modules() if m.__name__.count(".") <= 1 and hasattr(m, "__all__")}
    assert expected <= pages, f"no page for {sorted(expected - pages)}"
    for core in ("nnumpy", "nnumpy.nn", "nnumpy.functional", "nnumpy.optim", "nnumpy.backend", "nnumpy.datasets"):
        assert core in pages


def test_no_rest_role_survives_in_the_api_pages(site):
    out, _ = site
    left = []
    for page in sorted((out / "api").glob("*.html")):
        text = _text(page.read_text(encoding="utf-8"))
        left += [f"{page.stem}: {m.group(0)}" for m in re.finditer(r":(func|class|meth|attr|mod|data):`", text)]
    assert not left, "\n".join(left[:20])
    # and roles became links: the report's own cross-reference, for one
    testing = (out / "api" / "nnumpy.testing.html").read_text(encoding="utf-8")
    assert 'href="nnumpy.report.html#nnumpy.report.tensor_errors"' in testing


def _stored_outputs(notebook):
    """What the site must show of each stored output of a notebook, in the form the page shows it
    (the richest one, as nbconvert picks): the start of a PNG's base64, the words of HTML or Markdown,
    a line of plain text."""
    def joined(value):
        return "".join(value) if isinstance(value, list) else value

    expected = []
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data", {})
            if "image/png" in data:
                expected.append(("png", joined(data["image/png"]).strip()[:80]))
            elif "text/html" in data or "text/markdown" in data:
                source = _text(joined(data["text/html"])) if "text/html" in data else joined(data["text/markdown"])
                words = re.findall(r"[A-Za-z0-9][A-Za-z0-9.%-]{3,}", source)[:6]
                if words:
                    expected.append(("words", words))
            else:
                text = joined(output.get("text") or data.get("text/plain") or "")
                lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines() if line.strip()]
                if lines:
                    expected.append(("text", max(lines[:5], key=len)))
    return expected


def test_every_tutorial_has_a_page_with_its_outputs(site):
    out, _ = site
    notebooks = sorted(ROOT.glob("tutorials/[0-9][0-9]_*.ipynb"))
    assert len(notebooks) >= 5
    shown = 0
    for nb in notebooks:
        page = out / "tutorials" / f"{nb.stem}.html"
        assert page.exists(), f"no page for {nb.name}"
        raw = page.read_text(encoding="utf-8")
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS"):      # shown without nbgrader's markup
            assert marker not in raw, f"{nb.name}: its page shows {marker!r}"
        ids = set(re.findall(r'\sid="([^"]+)"', raw))
        broken = sorted(set(re.findall(r'href="#([^"]+)"', raw)) - ids)
        assert not broken, f"{nb.name}: links to no anchor on its page: {broken}"     # (its contents list)
        mathjax = re.search(r'<script[^>]+src="([^"?]*MathJax\.js)', raw)
        assert mathjax and (page.parent / mathjax.group(1)).resolve().is_file(), f"{nb.name}: no MathJax"
        text = " ".join(_text(raw).split())
        for kind, what in _stored_outputs(nb):
            if kind == "png":
                assert what in raw, f"{nb.name}: a stored figure is not on its page"
            elif kind == "words":
                assert all(w in text for w in what), f"{nb.name}: the stored output with {what} is not on its page"
            else:
                assert " ".join(what.split()) in text, f"{nb.name}: the stored output {what!r} is not on its page"
            shown += 1
    assert shown > 20, "the tutorials' pages show almost no stored output"


def test_the_home_page_has_the_readme_commands(site):
    out, _ = site
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set up and run", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", setup, re.S)[:2]
    assert len(commands) == 2 and "nnumpy sweep" in commands[0] and "pytest" in commands[1], commands
    home = _text((out / "index.html").read_text(encoding="utf-8"))
    for command in commands:
        assert command in home, f"the home page lacks {command!r}"


def _shown_images(out, page):
    """The files that the <img> tags of a built page point at (data: URIs left out)."""
    raw = (out / page).read_text(encoding="utf-8")
    srcs = re.findall(r'<img[^>]+src="([^"]+)"', raw)
    return {(out / page).parent.joinpath(src).resolve() for src in srcs if not src.startswith("data:")}


def test_the_figures_show(site):
    out, _ = site
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    figures = [f for f in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", readme) if (ROOT / f).is_file()]
    assert figures, "the README shows no figure"
    shown = _shown_images(out, "index.html")
    for figure in figures:
        assert any(p.is_file() and p.name == figure.rsplit("/", 1)[-1] for p in shown), \
            f"the home page does not show {figure}"
    assert (out / "practical" / "comparison.png").resolve() in _shown_images(out, "practical/index.html")
    results = _shown_images(out, "benchmarks/results.html")
    for png in (ROOT / "benchmarks").rglob("*.png"):
        site_png = (out / png.relative_to(ROOT)).resolve()
        assert site_png.is_file() and site_png in results, f"{png.relative_to(ROOT)} is not on the results page"


def test_the_docstring_converter():
    require_package("griffe", "docs")
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import griffe_roles as g
    finally:
        sys.path.remove(str(ROOT / "docs"))
    resolver = g.Resolver(g.api_plan())
    link = g.markdown_link(resolver, "nnumpy.training.fit")
    text = g.to_markdown("Returns a :class:`History`; see :func:`~nnumpy.report.tensor_errors` and\n"
                         ":class:`ValueError`.  With y_nj = x_nj W_kj:\n    dx = dy @ W   (N, K)\n"
                         "Shapes (*, D) and KH*KW, every *batch*::\n\n    x\n", link)
    assert "[`History`][nnumpy.training.History]" in text
    assert "[`tensor_errors`][nnumpy.report.tensor_errors]" in text
    assert "`ValueError`" in text and "[`ValueError`]" not in text            # not nnumpy's: code, no link
    assert "W_kj:\n\n    dx = dy @ W   (N, K)" in text                          # a code block, blank line added
    assert "(\\*, D)" in text and "KH\\*KW" in text and "*batch*:" in text    # stars: escaped, emphasis kept


def test_the_extending_walkthrough_runs(tmp_path):
    """docs/extending.md's ```python blocks, in order, are a script that must run (its own asserts
    check the layer against finite differences, PyTorch when installed, the protocol and the kernel)."""
    page = (ROOT / "docs" / "extending.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", page, re.S | re.M)
    assert len(blocks) >= 8
    script = tmp_path / "walkthrough.py"
    script.write_text("\n\n".join(blocks), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Scale" in proc.stdout                                              # the summary() table printed


def test_search_works_from_a_file_url(site):
    """README says to open site/index.html: the search index must be a script there (Material's offline
    plugin), since a browser will not fetch search_index.json from file://."""
    out, _ = site
    assert (out / "search" / "search_index.js").is_file()
    assert "assert_gradient" in (out / "search" / "search_index.js").read_text(encoding="utf-8")


def test_methods_without_a_docstring_show_their_base_classes(site):
    """A layer's forward/backward with no docstring of its own shows Module's (or Loss's), as help() does,
    instead of an empty entry."""
    out, _ = site
    page = (out / "api" / "nnumpy.nn.html").read_text(encoding="utf-8")
    for method, words in (("activation.ReLU.backward", "dL/d(output)"), ("activation.Tanh.forward", "forward pass"),
                          ("loss.NLLLoss.backward", "d(dloss * loss)/d(output)")):
        start = page.find(f'id="nnumpy.nn.{method}"')
        assert start > 0, f"no entry for {method}"
        entry = _text(page[start:page.find('class="doc doc-heading"', start + 50)])
        assert words in entry, f"{method}: {entry[:200]!r}"
