"""nnumpy's docstrings as Markdown: the API plan of the site and a griffe extension.

nnumpy's docstrings are plain text written the reST way: Sphinx roles
(``:func:`~nnumpy.report.tensor_errors```, ``:class:`History```, ``:meth:``,
``:attr:``, ``:mod:``, ``:data:``), ``double backticks`` for code, ``text::``
before a literal block, and formulas or shape tables in blocks indented under
the sentence that introduces them (often with no blank line in between).
Markdown needs three of these said differently, and :class:`ReSTRoles` (a
griffe extension, loaded by mkdocstrings' Python handler) rewrites every
docstring before it is rendered:

* a role becomes an autorefs cross-reference, ``[`title`][identifier]``, when
  its target is an object that the site documents (the identifier is the
  heading the object has on the site), and inline code otherwise (NumPy,
  PyTorch, builtins, private helpers), so every link resolves and
  ``mkdocs build --strict`` stays clean;
* ``text::`` becomes ``text:`` and a lone ``::`` line goes;
* an indented block right under a line of prose gets the blank line that
  makes it a code block, a list right under a line of prose the blank line
  that makes it a list, and a doctest (``>>>``) at the margin becomes code;
* a star that is not emphasis (``KH*KW``, ``(*, D)``) and an underscore
  outside a word (``'_'``) are escaped, so that formulas in prose do not
  turn into italics; ``*emphasis*`` pairs and list bullets stay.

``double backticks`` need nothing: they are a Markdown code span already.
The one docstring with Google-style sections (``Args:``/``Returns:``) keeps
them verbatim, and the handler's ``docstring_style: google`` turns them into
tables; every other docstring is prose, which that style renders as it is.

:func:`api_plan` decides what the site documents, by walking the package:
every public module (no part of its name starts with ``_``) that has an
``__all__`` is documented, each name in an ``__all__`` is rendered once, at
its home (the module that defines it when that module exports it, else the
most specific module that exports it), and every other place that exports it
links there.  ``docs/hooks.py`` builds the API pages from the same plan, so
the pages, the links and ``tests/test_docs.py`` agree by construction.
"""
from __future__ import annotations

import builtins
import functools
import importlib
import inspect
import pkgutil
import re
import types
from dataclasses import dataclass, field

import griffe

PACKAGE = "nnumpy"

#: Google-style section titles whose indented block is left exactly as written.
GOOGLE_SECTIONS = re.compile(
    r"^\s*(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Other Parameters|Returns|Return|"
    r"Yields|Receives|Raises|Warns|Attributes|Functions|Classes|Modules|Examples?|Notes?|Warnings?|"
    r"See Also|References|Todo)\s*:\s*$")
ROLE = re.compile(r":(?:py:)?(func|class|meth|attr|mod|data|exc|obj|const|ref):`([^`]+)`")
LIST_ITEM = re.compile(r"^\s{0,3}([*+-]|\d+[.)])\s+\S")


def _public(modname):
    return not any(part.startswith("_") for part in modname.split("."))


def _key(obj, name):
    """Identity of an exported object across the modules that export it: a
    module by its name, a class or function by where it is defined, data by
    its name and identity (two modules exporting one tuple under one name)."""
    if isinstance(obj, types.ModuleType):
        return ("module", obj.__name__)
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if (inspect.isclass(obj) or inspect.isroutine(obj)) and isinstance(module, str) and isinstance(qualname, str):
        return ("def", module, qualname)
    return ("data", name, id(obj))


@dataclass
class Plan:
    """What the site documents.

    modules: documented module name -> module object (the package first).
    pages: page module name -> its section modules (the page's own module
      first), in order; every documented module is a section of one page.
    members: documented module name -> the names rendered in its section
      (those whose home it is), in ``__all__`` order.
    exports: documented module name -> its ``__all__`` (names of modules it
      exports included).
    primary: object key -> the identifier of its heading on the site.
    """
    modules: dict = field(default_factory=dict)
    pages: dict = field(default_factory=dict)
    members: dict = field(default_factory=dict)
    exports: dict = field(default_factory=dict)
    primary: dict = field(default_factory=dict)

    def page_of(self, modname):
        for page, sections in self.pages.items():
            if modname in sections:
                return page
        return None

    def identifier(self, obj, name):
        """The site identifier of ``obj`` exported as ``name``, or None."""
        return self.primary.get(_key(obj, name))


@functools.lru_cache(maxsize=None)
def api_plan(package=PACKAGE):
    """Walk ``package`` and decide the API pages (see the module docstring).

    An import error, or an ``__all__`` naming something the module does not
    have, stops the build: the site must never silently leave a name out."""
    root = importlib.import_module(package)
    names = [package] + sorted(info.name for info in pkgutil.walk_packages(root.__path__, package + ".")
                               if _public(info.name))
    plan = Plan()
    for name in names:
        mod = importlib.import_module(name)
        exported = getattr(mod, "__all__", None)
        if exported is not None:
            plan.modules[name] = mod
            plan.exports[name] = [str(n) for n in exported]
    # a public module that a documented module exports by name is documented too, __all__ or not
    for name in list(plan.exports):
        for n in plan.exports[name]:
            obj = getattr(plan.modules[name], n)
            if isinstance(obj, types.ModuleType) and _public(obj.__name__) and obj.__name__ not in plan.modules:
                plan.modules[obj.__name__] = obj
                plan.exports[obj.__name__] = []
    plan.modules = {n: plan.modules[n] for n in sorted(plan.modules, key=lambda n: (n != package, n))}

    # pages: the package, and each documented module nearest to the package; the rest are sections
    for name in plan.modules:
        parts = name.split(".")
        page = next((".".join(parts[:i]) for i in range(2, len(parts) + 1)
                     if ".".join(parts[:i]) in plan.modules), name)
        plan.pages.setdefault(page, []).append(name)
    for name in plan.modules:
        plan.primary[("module", name)] = name
        plan.members[name] = []

    # homes: one heading per object
    exporters = {}
    for modname, exported in plan.exports.items():
        mod = plan.modules[modname]
        for n in exported:
            if not hasattr(mod, n):
                raise AttributeError(f"{modname}.__all__ lists {n!r}, which {modname} does not have")
            obj = getattr(mod, n)
            if isinstance(obj, types.ModuleType):
                continue                              # documented as its own page or section
            exporters.setdefault(_key(obj, n), []).append((modname, n))
    for key, where in exporters.items():
        defined_here = [(m, n) for m, n in where if key[0] == "def" and m == key[1]]
        home, n = defined_here[0] if defined_here else sorted(where, key=lambda mn: (-mn[0].count("."), mn))[0]
        plan.primary[key] = f"{home}.{n}"
        plan.members[home].append(n)
    for modname in plan.members:                      # __all__ order
        order = {n: i for i, n in enumerate(plan.exports[modname])}
        plan.members[modname].sort(key=order.__getitem__)
    return plan


# ------------------------------------------------------------------------------------------------
# Role targets
# ------------------------------------------------------------------------------------------------
def _import_prefix(path):
    """(module, remaining parts) for the longest importable prefix of ``path``."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            return importlib.import_module(".".join(parts[:i])), parts[i:]
        except ImportError:
            continue
    return None, parts


def _scopes(owner_path):
    """The runtime objects enclosing a docstring's owner, innermost first
    (methods, classes, then the module)."""
    mod, rest = _import_prefix(owner_path)
    if mod is None:
        return []
    chain = [mod]
    for part in rest:
        try:
            chain.append(getattr(chain[-1], part))
        except AttributeError:
            break
    return list(reversed(chain))


def _class_member(cls, name):
    """(defining class, name) when ``name`` is in ``cls``'s MRO, else None."""
    for klass in inspect.getmro(cls):
        if name in vars(klass):
            return klass
    return None


class Resolver:
    """Turn a role's target into the site identifier of what it names."""

    def __init__(self, plan):
        self.plan = plan

    def _member_id(self, cls, name):
        klass = _class_member(cls, name)
        if klass is None or name.startswith("_"):
            return None
        owner = self.plan.identifier(klass, klass.__name__)
        return f"{owner}.{name}" if owner else None

    def _walk(self, start, parts):
        """Identifier of ``start.parts...`` (start: a module or class), or None."""
        obj, parent, name = start, None, None
        for part in parts:
            if inspect.isclass(obj) and part in dir(obj):
                parent, name = obj, part
                obj = getattr(obj, part)
            elif isinstance(obj, types.ModuleType) and hasattr(obj, part):
                parent, name = obj, part
                obj = getattr(obj, part)
            elif isinstance(obj, types.ModuleType):   # a submodule not imported as an attribute
                try:
                    obj = importlib.import_module(f"{obj.__name__}.{part}")
                except ImportError:
                    return None
                parent, name = None, part
            else:
                return None
        if isinstance(obj, types.ModuleType):
            return self.plan.primary.get(("module", obj.__name__))
        if inspect.isclass(parent) and not inspect.isclass(obj):
            return self._member_id(parent, name)
        return self.plan.identifier(obj, name if name else getattr(obj, "__name__", ""))

    def resolve(self, target, owner_path, role="obj"):
        """The site identifier of what ``:role:`target``` names in the docstring
        of ``owner_path``, or None (not nnumpy's, or not on the site).  Names are
        looked up as Python would from there: the enclosing classes (with their
        bases), the module, the builtins; a name found nowhere in scope names the
        one documented object of that name, when there is exactly one."""
        target = target.strip()
        if target.startswith("."):                    # relative to the owner's package
            mod, _ = _import_prefix(owner_path)
            if mod is None:
                return None
            base = mod.__name__ if hasattr(mod, "__path__") else mod.__name__.rpartition(".")[0]
            dots = len(target) - len(target.lstrip("."))
            for _ in range(dots - 1):
                base = base.rpartition(".")[0]
            target = f"{base}.{target.lstrip('.')}"
        parts = target.split(".")
        if parts[0] == PACKAGE:
            mod, rest = _import_prefix(target)
            return self._walk(mod, rest) if mod is not None else None
        for scope in _scopes(owner_path):
            if inspect.isclass(scope):
                if _class_member(scope, parts[0]) is not None:
                    return self._walk(scope, parts)
            elif isinstance(scope, types.ModuleType):
                if hasattr(scope, parts[0]):
                    return self._walk(scope, parts)
        if hasattr(builtins, parts[0]):
            return None
        if role != "mod":              # a name not in scope: the one documented object of that name, if unique
            same = {i for i in self.plan.primary.values() if i.rpartition(".")[2] == target}
            return same.pop() if len(same) == 1 else None
        mod, rest = _import_prefix(f"{PACKAGE}.{target}")   # a module named short: :mod:`nn`
        if mod is None or (mod.__name__ == PACKAGE and not rest):
            return None
        return self._walk(mod, rest)


# ------------------------------------------------------------------------------------------------
# Docstring text: reST-isms -> Markdown
# ------------------------------------------------------------------------------------------------
def _indent(line):
    return len(line) - len(line.lstrip(" "))


def convert_roles(text, link):
    """Replace each Sphinx role in ``text`` by ``link(title, target)``."""
    def one(match):
        role, body = match.groups()
        explicit = re.fullmatch(r"(.*?)\s*<([^<>]+)>", body)
        if explicit:
            title, target = explicit.group(1), explicit.group(2)
        else:
            target = body
            title = body.lstrip("~").rpartition(".")[2] if body.startswith("~") else body.lstrip(".")
        return link(title, target.lstrip("~"), role)
    return ROLE.sub(one, text)


def to_markdown(text, link):
    """nnumpy's reST-flavoured docstring ``text`` as Markdown (see the module docstring)."""
    out = []
    code = set()           # indices in out of code lines
    in_code = False        # inside an indented (code) block
    in_section = False     # inside a Google-style section: kept as written
    in_doctest = False     # inside a doctest that starts at the margin (it is code, indented here)
    prev = ""              # the previous line as emitted ("" for blank)
    for raw in text.split("\n"):
        line = raw.rstrip()
        if not line:
            out.append("")
            prev = ""
            in_doctest = False
            continue
        ind = _indent(line)
        if not in_code and not in_section and ind < 4 and (in_doctest or line.lstrip().startswith(">>>")):
            if not in_doctest and prev:
                out.append("")
            in_doctest = True
            code.add(len(out))
            out.append("    " + line)
            prev = line
            continue
        if in_section and ind == 0:
            in_section = False
        if in_code and ind < 4:
            in_code = False
        if in_section or in_code:
            if in_code:
                code.add(len(out))
            out.append(line if in_code else convert_roles(line, link))
            prev = line
            continue
        if GOOGLE_SECTIONS.match(line) and ind == 0:
            in_section = True
            if prev:
                out.append("")
            out.append(line)
            prev = line
            continue
        if ind >= 4:
            # an indented block is code (a formula, a shape table, a doctest), except inside a list,
            # where Markdown reads it as the item's continuation; straight under prose it needs a blank line
            if not prev:
                in_code = not _last_paragraph_is_list(out)
            elif not _last_paragraph_is_list(out):
                out.append("")
                in_code = True
            if in_code:
                code.add(len(out))
            out.append(line if in_code else convert_roles(line, link))
            prev = line
            continue
        if line.strip() == "::":
            prev = out[-1] if out else ""
            continue
        if line.endswith("::"):
            line = line[:-2].rstrip() + ("" if line[:-2].endswith(" ") else ":")
        if LIST_ITEM.match(line) and prev and not _last_paragraph_is_list(out):
            out.append("")
        line = convert_roles(line, link)
        out.append(line)
        prev = line
    # Markdown emphasis: keep the *pairs* that are emphasis, escape every other star (KH*KW, (*, D), 2 * x)
    paragraphs, run = [], []
    for i, line in enumerate(out + [""]):
        if line and i not in code:
            run.append(line)
        else:
            if run:
                paragraphs.extend(_escape_stars("\n".join(run)).split("\n"))
                run = []
            if i < len(out):
                paragraphs.append(line)
    return "\n".join(paragraphs)


CODE_SPAN = re.compile(r"(?s)(?<!`)(`+)(?!`).*?(?<!`)\1(?!`)")


def _escape_stars(text):
    """Escape the stars and underscores of a Markdown paragraph that are not emphasis.

    A run of stars opens emphasis when a word starts right after it and a
    space, a bracket or the start of the text precedes it; it closes when a
    word (or a closing bracket or quote) ends right before it and no letter
    or digit follows.  Openers and closers of the same length pair up; the
    stars of multiplication and of shapes such as ``(*, D)`` are escaped.
    nnumpy's docstrings never mean emphasis by underscores: each one outside
    a word (``'_'``, ``__init__``) is escaped, those inside one (``x_ni``)
    stay.  Code spans and the identifiers
    of cross-references are left alone."""
    protected = [m.span() for m in CODE_SPAN.finditer(text)]
    protected += [m.span() for m in re.finditer(r"\]\[[^\]]*\]", text)]
    runs = [m for m in re.finditer(r"\*+|_+", text) if not any(a <= m.start() < b for a, b in protected)]
    keep, stack = set(), []
    for m in runs:
        before = text[m.start() - 1] if m.start() > 0 else " "
        after = text[m.end()] if m.end() < len(text) else " "
        if m.group()[0] == "_":            # snake_case stays (never emphasis); any other underscore is escaped
            if before.isalnum() and after.isalnum():
                keep.add(m.start())
            continue
        line_start = text.rfind("\n", 0, m.start()) + 1
        if m.group() == "*" and not text[line_start:m.start()].strip() and after == " ":
            keep.add(m.start())                              # a list item's bullet
            continue
        opener = after.isalnum() and (before.isspace() or before in "([{\"'")
        closer = (before.isalnum() or before in ")]}'\".!?") and not after.isalnum() and after not in "*_"
        if closer and stack and stack[-1].group() == m.group():
            keep.update((stack.pop().start(), m.start()))
        elif opener:
            stack.append(m)
    pieces, last = [], 0
    for m in runs:
        if m.start() not in keep:
            pieces += [text[last:m.start()], "".join("\\" + c for c in m.group())]
            last = m.end()
    return "".join(pieces) + text[last:]


def _last_paragraph_is_list(out):
    """True when the last paragraph emitted (blank lines after it skipped) is a list."""
    seen_text = False
    for line in reversed(out):
        if not line:
            if seen_text:
                return False
            continue
        seen_text = True
        if LIST_ITEM.match(line):
            return True
    return False


# ------------------------------------------------------------------------------------------------
# The griffe extension
# ------------------------------------------------------------------------------------------------
def markdown_link(resolver, owner_path):
    """The ``link`` function for :func:`to_markdown`: an autorefs reference
    when the target is documented on the site, inline code otherwise."""
    def link(title, target, role):
        identifier = resolver.resolve(target, owner_path, role)
        code = f"`{title}`"
        return f"[{code}][{identifier}]" if identifier else code
    return link


class ReSTRoles(griffe.Extension):
    """Rewrite every docstring of the package into Markdown with cross-references."""

    def __init__(self, package: str = PACKAGE) -> None:
        super().__init__()
        self.package = package

    def on_object(self, *, obj, loader, **kwargs):
        """Every object below the package (griffe calls this once for each)."""
        if obj.is_alias or obj.docstring is None or not obj.path.startswith(self.package + "."):
            return
        resolver = Resolver(api_plan(self.package))
        obj.docstring.value = to_markdown(obj.docstring.value, markdown_link(resolver, obj.path))

    def on_package(self, *, pkg, loader, **kwargs):
        """The package itself, which is nobody's member; then the methods without a docstring of
        their own (forward, backward of each layer) get their base class's (Module's, Loss's)."""
        if pkg.path == self.package and pkg.docstring is not None:
            resolver = Resolver(api_plan(self.package))
            pkg.docstring.value = to_markdown(pkg.docstring.value, markdown_link(resolver, pkg.path))
        if pkg.path == self.package:
            _inherit_docstrings(pkg)


def _inherit_docstrings(module):
    """Give each method of the package's classes that has no docstring the one of the same method
    in its nearest base class that has one (what ``help()`` shows through ``inspect.getdoc``)."""
    for member in list(module.members.values()):
        if member.is_alias:
            continue
        if member.is_module:
            _inherit_docstrings(member)
        elif member.is_class:
            try:
                bases = member.mro()         # (a base griffe cannot resolve is left out of it)
            except ValueError:               # griffe's "cannot compute C3 linearization": no order to inherit in
                continue
            for name, method in member.members.items():
                if method.is_alias or not method.is_function or method.docstring is not None:
                    continue
                for base in bases:
                    inherited = base.members.get(name)
                    if inherited is not None and not inherited.is_alias and inherited.docstring is not None:
                        method.docstring = griffe.Docstring(inherited.docstring.value, parent=method)
                        break
