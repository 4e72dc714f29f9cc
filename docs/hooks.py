"""MkDocs hooks: the pages of nnumpy's site that are made from the repository at build time.

Nothing here is a hand-kept list that could go stale:

* ``index.md`` is the README, its repository-relative links rewritten: a link
  to something the site has (a tutorial, a figure, a benchmark result) points
  to it, a link to anything else (``examples/grid.toml``) becomes its text,
  and the reST roles that its quoted catalog table carries become links;
* ``tutorials/`` holds every ``tutorials/[0-9][0-9]_*.ipynb`` found when the
  site is built (rendered by mkdocs-jupyter with the outputs stored in the
  notebook, never executed; MathJax for their formulas is copied from
  jupyter-server-mathjax, so they render offline), an index made from the
  README's Tutorials section (any notebook it does not name is listed after
  it), and ``tutorials/README.md``, when there is one, as ``guide.md``;
* ``benchmarks/`` holds ``benchmarks/README.md`` when there is one (else an
  overview made from the benchmark scripts' own docstrings), every other
  Markdown file and every figure under ``benchmarks/``, and a page with the
  recorded results (``benchmarks/results/*.txt``) and their figures;
* ``api/`` holds one page per public subpackage or module of nnumpy and an
  index, following :func:`griffe_roles.api_plan` (the walk of the package that
  also tells the docstrings' cross-references where everything is).

``mkdocs.yml``'s nav names the index page of each generated section
(``tutorials/index.md``, ``benchmarks/index.md``, ``api/index.md``); the hook
adds the section's pages after it.
"""
from __future__ import annotations

import inspect
import json
import atexit
import posixpath
import re
import shutil
import tempfile
import types
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

import griffe_roles  # docs/ is on sys.path while MkDocs loads this file


ROOT = Path(__file__).resolve().parents[1]
TUTORIAL_GLOB = "tutorials/[0-9][0-9]_*.ipynb"
FIGURES = (".png", ".svg", ".jpg", ".jpeg", ".gif")
LINK = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(([^()\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")


# ------------------------------------------------------------------------------------------------
# What is there
# ------------------------------------------------------------------------------------------------
def _tutorials():
    return sorted(ROOT.glob(TUTORIAL_GLOB))


def _notebook_title(path):
    """The notebook's first Markdown heading, or its file name when it has none
    (or cannot be read: another program may be writing it right now)."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return path.stem
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", [])).splitlines():
                if line.startswith("# "):
                    return re.sub(r"[*_`]", "", line[2:]).strip()
    return path.stem


#: Repository files that the site serves under another name (a README is its folder's page).
RENAMED = {"README.md": "index.md", "benchmarks/README.md": "benchmarks/index.md",
           "tutorials/README.md": "tutorials/guide.md"}


def _benchmark_pages():
    """src_uri -> absolute path of each Markdown file under benchmarks/ (the README as the index)."""
    pages = {}
    for path in sorted((ROOT / "benchmarks").rglob("*.md")):
        rel = path.relative_to(ROOT).as_posix()
        pages["benchmarks/index.md" if rel == "benchmarks/README.md" else rel] = path
    return pages


def _benchmark_figures():
    return sorted(p for p in (ROOT / "benchmarks").rglob("*") if p.suffix.lower() in FIGURES)


def _mathjax_files():
    """(site path, file) for MathJax 2, which renders the notebooks' LaTeX on the
    site without a network: the copy that jupyter-server-mathjax (the docs extra)
    ships, less what the notebooks never load (SVG output, accessibility maps,
    translations)."""
    import importlib.util
    spec = importlib.util.find_spec("jupyter_server_mathjax")
    if spec is None:
        raise RuntimeError('the notebooks\' formulas need MathJax from jupyter-server-mathjax: '
                           'pip install -e ".[docs]"')
    static = Path(spec.submodule_search_locations[0]) / "static"
    skip = ("jax/output/SVG/", "extensions/a11y/", "localization/")
    for path in sorted(static.rglob("*")):
        rel = path.relative_to(static).as_posix()
        if path.is_file() and not rel.startswith(skip):
            yield f"{MATHJAX}/{rel}", path


#: Where MathJax goes on the site, and the configuration that mkdocs.yml's
#: ``custom_mathjax_url`` names (``config=...,local/nnumpy``): STIX web fonts,
#: the only ones the package ships.
MATHJAX = "assets/mathjax"
MATHJAX_LOCAL_CONFIG = """MathJax.Hub.Config({
  "HTML-CSS": {availableFonts: [], webFont: "STIX-Web", imageFont: null, preferredFont: null},
  messageStyle: "none"
});
MathJax.Ajax.loadComplete("[MathJax]/config/local/nnumpy.js");
"""


def _api_page_uri(module):
    return f"api/{module}.md"


# ------------------------------------------------------------------------------------------------
# Navigation
# ------------------------------------------------------------------------------------------------
def _generated_nav():
    plan = griffe_roles.api_plan()
    tutorials = [{_notebook_title(p): p.relative_to(ROOT).as_posix()} for p in _tutorials()]
    if (ROOT / "tutorials" / "README.md").exists():
        tutorials.insert(0, {"The notebooks in a course": RENAMED["tutorials/README.md"]})
    bench = [{"Results": "benchmarks/results.md"}]
    bench += [uri for uri in _benchmark_pages() if uri != "benchmarks/index.md"]
    api = [{page: _api_page_uri(page)} for page in plan.pages]
    return {"tutorials/index.md": tutorials, "benchmarks/index.md": bench, "api/index.md": api}


def _expand(nav, generated):
    out = []
    for item in nav:
        if isinstance(item, dict):
            (title, value), = item.items()
            if isinstance(value, list):
                out.append({title: _expand(value, generated)})
            elif value in generated:
                out.append({title: [value] + generated[value]})
            else:
                out.append(item)
        else:
            out.append(item)
    return out


def on_config(config, **kwargs):
    griffe_roles.api_plan.cache_clear()      # a new build (mkdocs serve) walks the package again
    config.nav = _expand(config.nav or [], _generated_nav())
    return config


# ------------------------------------------------------------------------------------------------
# Markdown helpers
# ------------------------------------------------------------------------------------------------
def _outside_fences(text, fn):
    """Apply ``fn`` to every line of ``text`` that is not inside a fenced code block."""
    out, fenced = [], False
    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
            out.append(line)
        else:
            out.append(line if fenced else fn(line))
    return "\n".join(out)


def _rewrite_links(text, src_dir, dest_dir, site_files):
    """Rewrite the repository-relative links of a file that lived in ``src_dir``
    (relative to the repository) for a page at ``dest_dir`` (relative to the
    docs): a target the site has is pointed at, anything else becomes text."""
    def one(match):
        bang, label, target = match.groups()
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target):
            return match.group(0)                        # a URL, an anchor, an absolute path
        path, _, anchor = target.partition("#")
        repo_path = posixpath.normpath(posixpath.join(src_dir, path))
        candidates = [repo_path]
        if repo_path.startswith("docs/"):
            candidates.insert(0, repo_path[len("docs/"):])
        if repo_path in RENAMED:
            candidates.insert(0, RENAMED[repo_path])
        for uri in candidates:
            if uri in site_files:
                rel = posixpath.relpath(uri, dest_dir or ".")
                return f"{bang}[{label}]({rel}{'#' + anchor if anchor else ''})"
        if bang:
            return f"*{label}*"
        return label if label.startswith("`") else f"`{label}`" if label == target else label
    return _outside_fences(text, lambda line: LINK.sub(one, line))


def _link_roles(text, owner="nnumpy"):
    """The reST roles that reach Markdown files from docstrings (the README quotes
    ``python -m nnumpy.catalog``, which quotes docstrings) as cross-references."""
    resolver = griffe_roles.Resolver(griffe_roles.api_plan())
    link = griffe_roles.markdown_link(resolver, owner)
    return _outside_fences(text, lambda line: griffe_roles.convert_roles(line, link))


def _section(text, title):
    """The body of the ``## title`` section of a Markdown text, or ''."""
    lines = text.split("\n")
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == f"## {title}")
    except StopIteration:
        return ""
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start + 1:end]).strip()


def _first_sentence(doc):
    """The first sentence of a docstring's first paragraph (all of it when short)."""
    para = re.split(r"\n\s*\n", inspect.cleandoc(doc or "").strip(), maxsplit=1)[0]
    para = " ".join(line.strip() for line in para.splitlines())
    if len(para) > 160:
        ticks = 0
        for i, ch in enumerate(para):
            ticks += ch == "`"
            if ch == "." and ticks % 2 == 0 and para[i + 1:i + 2] in (" ", "") and i > 20:
                return para[:i + 1]
    return para


def _cell(text):
    return text.replace("|", "\\|")


def _markdown_docstring(text, owner_path):
    resolver = griffe_roles.Resolver(griffe_roles.api_plan())
    return griffe_roles.to_markdown(text, griffe_roles.markdown_link(resolver, owner_path))


# ------------------------------------------------------------------------------------------------
# The pages
# ------------------------------------------------------------------------------------------------
def _summary(obj, owner_path):
    if isinstance(obj, types.ModuleType) or inspect.isclass(obj) or inspect.isroutine(obj):
        return _cell(_markdown_docstring(_first_sentence(obj.__doc__), owner_path))
    text = repr(obj)
    text = text if len(text) <= 60 else text[:56] + " ..."
    return f"{type(obj).__name__} `{_cell(text)}`"


def _names_table(module):
    plan = griffe_roles.api_plan()
    mod = plan.modules[module]
    rows = ["| name | what it is |", "|---|---|"]
    for name in plan.exports[module]:
        obj = getattr(mod, name)
        identifier = plan.identifier(obj, name)
        rows.append(f"| [`{name}`][{identifier}] | {_summary(obj, module)} |")
    return "\n".join(rows)


def _directive(identifier, **options):
    lines = [f"::: {identifier}", "    options:"]
    lines += [f"      {key}: {json.dumps(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def _api_page(page):
    """A page: the page module's docstring, a table of every name in its
    ``__all__``, the objects whose home it is, then one section per submodule
    (its docstring and the objects whose home it is)."""
    plan = griffe_roles.api_plan()
    parts = [f"# `{page}`", "", _directive(page, show_root_heading=False, members=False)]
    if plan.exports[page]:
        parts += [f"Every name in `{page}.__all__`, each linked to its documentation:", "",
                  _names_table(page), ""]
    if plan.members[page]:
        parts += [f"## Defined in `{page}`" if len(plan.pages[page]) > 1 else "## Contents", ""]
        parts += [_directive(f"{page}.{name}", show_root_heading=True, show_root_full_path=False,
                             heading_level=3) for name in plan.members[page]]
    for module in plan.pages[page][1:]:
        parts += [_directive(module, show_root_heading=True, heading_level=2,
                             members=plan.members[module] or False)]
    return "\n".join(parts)


def _api_index():
    plan = griffe_roles.api_plan()
    rows = ["# API reference", "",
            "One page per public subpackage or module of nnumpy, generated from the docstrings when the site "
            "is built: every public module (no part of its name starts with `_`) that has an `__all__`, and "
            "every name in that `__all__`. A subpackage's page documents its submodules too, one section each. "
            "Each object is documented once, in the module that defines it; the names that a package "
            "re-exports (`nnumpy.Linear` is `nnumpy.nn.Linear` is `nnumpy.nn.linear.Linear`) link there.", "",
            "| page | what it holds |", "|---|---|"]
    for page in plan.pages:
        rows.append(f"| [`{page}`]({page}.md) | {_summary(plan.modules[page], page)} |")
    return "\n".join(rows) + "\n"


def _tutorials_index(readme, site_files):
    text = _section(readme, "Tutorials")
    text = _rewrite_links(text, "", "tutorials", site_files)
    missing = [p for p in _tutorials() if p.name not in text]
    parts = ["# Tutorials", "", text]
    if RENAMED["tutorials/README.md"] in site_files:
        parts += ["", "How the notebooks are used in a course (student versions, check cells, grading with "
                      "nbgrader): [the notebooks' guide](guide.md)."]
    if missing:
        parts += ["", "Also in `tutorials/`:", ""]
        parts += [f"- [{_notebook_title(p)}]({p.name})" for p in missing]
    parts += ["", "Each page shows a notebook as committed, with the outputs of its last full run "
                  "(the site never runs them): the teacher's version, with the worked solutions (the hidden "
                  "tests left out). Students work on the versions in `tutorials/student/`. To run one yourself: "
                  "`pip install -e \".[notebooks]\" && jupyter lab tutorials/`."]
    return "\n".join(parts) + "\n"


def _benchmarks_index():
    parts = ["# Benchmarks", "",
             "The scripts in `benchmarks/` measure nnumpy against PyTorch, scikit-learn and the GEMM floor, "
             "and reproduce published test errors. Their recorded output is on the "
             "[results](results.md) page; the figures are discussed on the home page under "
             "[Performance](../index.md#performance) and [Accuracy](../index.md#accuracy). "
             "Each needs the benchmark extra: `pip install -e \".[bench]\"`.", ""]
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        tree_doc = _module_docstring(script)
        if not tree_doc or "__main__" not in script.read_text(encoding="utf-8"):
            continue
        parts += [f"## `{script.name}`", "", _markdown_docstring(tree_doc, "nnumpy"), ""]
    return "\n".join(parts)


def _module_docstring(path):
    import ast
    try:
        return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    except SyntaxError:
        return None


def _benchmark_results(site_files):
    results = ROOT / "benchmarks" / "results"
    parts = ["# Benchmark results", "",
             "What the benchmark scripts printed, as committed in `benchmarks/results/` "
             "(the `.json` files beside them hold the same numbers for programs).", ""]
    stems = sorted({p.stem for p in results.glob("*") if p.suffix in (".txt",) + FIGURES})
    for stem in stems:
        parts += [f"## `{stem}`", ""]
        for fig in sorted(results.glob(f"{stem}.*")):
            if fig.suffix.lower() in FIGURES:
                parts += [f"![{stem}](results/{fig.name})", ""]
        txt = results / f"{stem}.txt"
        if txt.exists():
            body = txt.read_text(encoding="utf-8").rstrip("\n")
            parts += [f"`{txt.relative_to(ROOT).as_posix()}`:", "", "```text", body, "```", ""]
    return "\n".join(parts)


_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) (SOLUTION|HIDDEN TESTS)[ \t]*$")


def _as_shown(path):
    """The notebook at ``path`` as the site shows it: the worked solutions without nbgrader's
    ``### BEGIN/END SOLUTION`` lines, and without the hidden tests (they stay hidden)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        src = cell.get("source", "")
        lines = "".join(src).splitlines(True) if isinstance(src, list) else src.splitlines(True)
        kept, hidden = [], False
        for line in lines:
            m = _MARKER.match(line.rstrip("\n"))
            if m and m.group(2) == "HIDDEN TESTS":
                hidden = m.group(1) == "BEGIN"
                continue
            if m or hidden:
                continue
            kept.append(line)
        cell["source"] = kept
    return json.dumps(nb, indent=1, ensure_ascii=False)


_SHOWN_DIR = None


def _shown_dir():
    """A folder for the notebooks as shown, removed when the build's process ends."""
    global _SHOWN_DIR
    if _SHOWN_DIR is None:
        _SHOWN_DIR = Path(tempfile.mkdtemp(prefix="nnumpy-docs-"))
        atexit.register(shutil.rmtree, _SHOWN_DIR, ignore_errors=True)
    return _SHOWN_DIR


@event_priority(100)   # before mkdocs-jupyter's on_files, which must see the notebooks
def on_files(files, config, **kwargs):
    def add(uri, content=None):
        """Add the repository's file ``uri`` as it is, or ``content`` under that name."""
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        if content is None:      # a real file beside docs/ (mkdocs-jupyter needs one it can wrap)
            files.append(File(uri, src_dir=str(ROOT), dest_dir=config.site_dir,
                              use_directory_urls=config.use_directory_urls))
        else:
            files.append(File.generated(config, uri, content=content))

    plan = griffe_roles.api_plan()
    for path in _tutorials():                # (a real file: mkdocs-jupyter reads the notebook itself)
        uri = path.relative_to(ROOT).as_posix()
        shown = _shown_dir() / uri
        shown.parent.mkdir(parents=True, exist_ok=True)
        shown.write_text(_as_shown(path), encoding="utf-8")
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        files.append(File(uri, src_dir=str(_shown_dir()), dest_dir=config.site_dir,
                          use_directory_urls=config.use_directory_urls))
    for path in _benchmark_figures():
        add(path.relative_to(ROOT).as_posix())
    for uri, path in _mathjax_files():
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    add(f"{MATHJAX}/config/local/nnumpy.js", content=MATHJAX_LOCAL_CONFIG)
    add("api/index.md", content=_api_index())
    for page in plan.pages:
        add(_api_page_uri(page), content=_api_page(page))

    # the pages whose links depend on everything the site holds
    bench_pages = _benchmark_pages()
    generated = {"index.md", "tutorials/index.md", "benchmarks/index.md", "benchmarks/results.md"}
    site_files = {f.src_uri for f in files} | generated | set(bench_pages)
    tutorials_readme = ROOT / "tutorials" / "README.md"
    if tutorials_readme.exists():
        site_files.add(RENAMED["tutorials/README.md"])
        add(RENAMED["tutorials/README.md"],
            content=_rewrite_links(tutorials_readme.read_text(encoding="utf-8"), "tutorials", "tutorials", site_files))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    add("index.md", content=_link_roles(_rewrite_links(readme, "", "", site_files)))
    add("tutorials/index.md", content=_tutorials_index(readme, site_files))
    if "benchmarks/index.md" not in bench_pages:
        add("benchmarks/index.md", content=_benchmarks_index())
    add("benchmarks/results.md", content=_benchmark_results(site_files))
    for uri, src in bench_pages.items():                 # links relative to where the file lives
        text = src.read_text(encoding="utf-8")
        add(uri, content=_rewrite_links(text, src.parent.relative_to(ROOT).as_posix(), posixpath.dirname(uri),
                                        site_files))
    return files


_HEADING_ID = re.compile(r'<h([1-6])[^>]*\sid="([^"]+)"')


def on_page_context(context, page, config, nav, **kwargs):
    """A notebook page's table of contents, pointed at the headings' real ids.  mkdocs-jupyter slugs
    each heading from its Markdown source, where inline code (`Scale`) is left out; the rendered
    heading's id keeps it, so such links led nowhere.  The contents list the headings in the order of
    the page, so the n-th entry gets the n-th heading's id."""
    if not page.file.src_uri.endswith(".ipynb") or not page.toc:
        return context
    ids = [m.group(2) for m in _HEADING_ID.finditer(page.content or "")]
    items, stack = [], list(reversed(list(page.toc)))
    while stack:                                   # depth first, in page order
        item = stack.pop()
        items.append(item)
        stack.extend(reversed(item.children))
    if len(items) == len(ids):
        for item, real in zip(items, ids):
            item.id = real
    return context
