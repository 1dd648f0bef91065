"""The search corpus and its BM25 index: documentation nobody here wrote, indexed once.

The corpus is the documentation that ships with this interpreter: the pydoc topics
(``pydoc_data.topics``, the language reference sections ``help("FOR")`` shows) and the
docstrings of the standard library's modules, classes and functions, plus those of a few
installed packages. Sources are read with ``ast`` (nothing is imported: importing
``antigravity`` opens a browser). The corpus is capped (files, documents, characters) so
that building takes seconds; the index (``bm25s``) and the documents are cached on disk under
``cache_root()/search/<key>``, keyed by the Python version, the caps and the package versions.
"""

from __future__ import annotations

import ast
import builtins
import functools
import hashlib
import importlib.metadata
import importlib.util
import itertools
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from conveyor_sgl.cache import cache_root

if TYPE_CHECKING:
    from bm25s import BM25  # at run time bm25s is imported without numba, below


def _import_bm25s() -> ModuleType:
    """``import bm25s`` without numba. bm25s imports numba whenever it is installed (sglang
    brings it): 0.7 s of every tool worker's start, for a JIT backend that a few thousand
    documents do not need (its numpy backend answers a query here in ~1 ms)."""
    absent = object()
    saved = sys.modules.get("numba", absent)
    sys.modules["numba"] = None  # type: ignore[assignment]  # `import numba` raises ImportError
    try:
        import bm25s
    finally:
        if saved is absent:
            del sys.modules["numba"]
        else:
            sys.modules["numba"] = saved  # type: ignore[assignment]
    return bm25s


bm25s = _import_bm25s()

# Parts of the stdlib that are tests, GUIs or legacy tooling: noise for a docs search.
_SKIP_DIRS = frozenset(
    [
        "site-packages",
        "dist-packages",
        "test",
        "tests",
        "idlelib",
        "lib2to3",
        "tkinter",
        "turtledemo",
        "ensurepip",
        "distutils",
        "__pycache__",
        "venv",
    ]
)
DEFAULT_PACKAGES = ("numpy", "jsonschema", "yaml", "zmq", "msgspec", "psutil")
INDEX_VERSION = 3  # bump when the documents or the tokenization change


@dataclass(frozen=True)
class CorpusConfig:
    max_files: int = 800  # source files read (parsing them is most of the build time)
    max_package_files: int = 60  # of each package, so the stdlib does not crowd them out
    max_docs: int = 12000
    max_chars: int = 1500  # characters of a docstring that are indexed and stored
    packages: tuple[str, ...] = DEFAULT_PACKAGES

    def __post_init__(self) -> None:
        if min(self.max_files, self.max_docs, self.max_chars) <= 0:
            raise ValueError(f"corpus caps must be positive: {self}")


@dataclass(frozen=True)
class Hit:
    title: str  # "json.dumps", "topic: for"
    text: str
    score: float

    def snippet(self, chars: int = 160) -> str:
        first = " ".join(self.text.split("\n\n")[0].split())
        return first if len(first) <= chars else first[: chars - 3] + "..."


class SearchIndex:
    """BM25 over the documents; ``search`` is read-only, so threads may share one index."""

    def __init__(self, retriever: BM25, titles: list[str], texts: list[str]) -> None:
        self._retriever = retriever
        self._vocab = set(retriever.vocab_dict)
        self.titles, self.texts = titles, texts

    def __len__(self) -> int:
        return len(self.titles)

    def search(self, query: str, k: int = 3) -> list[Hit]:
        words = [w for w in _tokenize([query])[0] if w in self._vocab]
        if not words:
            return []  # no word of the query occurs in the corpus
        k = min(k, len(self.titles))
        ids, scores = self._retriever.retrieve([words], k=k, show_progress=False, n_threads=1)
        hits = [
            Hit(self.titles[i], self.texts[i], float(s))
            for i, s in zip(ids[0], scores[0], strict=True)
            if s > 0
        ]
        return hits


_loaded: dict[Path, SearchIndex] = {}
_loaded_lock = threading.Lock()
_default_directory: Path | None = None  # where this process first found the default index


def load_index(config: CorpusConfig | None = None, root: Path | None = None) -> SearchIndex:
    """The index, built first if this machine has none for this key; loaded once per process
    (it is read-only), so a worker that preloaded it (``SearchTool.preload``) starts at once."""
    global _default_directory
    default = config is None and root is None
    if default and _default_directory is not None:
        # As first resolved in this process: a confined worker's HOME (so its cache root) is
        # its workdir, but the index its preload loaded before the sandbox is this one.
        directory = _default_directory
    else:
        directory = (root or cache_root()) / "search" / index_key(config or CorpusConfig())
    with _loaded_lock:
        if default and _default_directory is None:
            _default_directory = directory
        if directory not in _loaded:
            if not (directory / "docs.json").exists():
                _build_into(directory, config or CorpusConfig())
            retriever = bm25s.BM25.load(str(directory / "bm25"))
            docs = json.loads((directory / "docs.json").read_text(encoding="utf-8"))
            _loaded[directory] = SearchIndex(retriever, docs["titles"], docs["texts"])
        return _loaded[directory]


def index_key(config: CorpusConfig) -> str:
    versions = {name: _version(name) for name in config.packages}
    key = {
        "index": INDEX_VERSION,
        "python": sys.version,
        "config": asdict(config),
        "packages": versions,
        "bm25s": _version("bm25s"),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return f"py{sys.version_info[0]}.{sys.version_info[1]}-{digest}"


def build_documents(config: CorpusConfig) -> tuple[list[str], list[str]]:
    titles: list[str] = []
    texts: list[str] = []
    for title, text in _documents(config):
        titles.append(title)
        texts.append(text[: config.max_chars])
        if len(titles) >= config.max_docs:
            break
    return titles, texts


def _build_into(directory: Path, config: CorpusConfig) -> None:
    titles, texts = build_documents(config)
    retriever = bm25s.BM25()
    retriever.index(
        _tokenize([f"{t}\n{x}" for t, x in zip(titles, texts, strict=True)]), show_progress=False
    )
    directory.parent.mkdir(parents=True, exist_ok=True)
    # Built aside and renamed: a concurrent builder or a reader never sees half an index.
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=directory.parent))
    try:
        retriever.save(str(staging / "bm25"))
        docs = json.dumps({"titles": titles, "texts": texts}, ensure_ascii=False)
        (staging / "docs.json").write_text(docs, encoding="utf-8")
        os.rename(staging, directory)
    except OSError:
        if not (directory / "docs.json").exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _tokenize(texts: list[str]) -> list[list[str]]:
    # Names like "json.dumps" or "get_docstring" must match the words "dumps", "docstring".
    split = [t.replace(".", " ").replace("_", " ") for t in texts]
    return bm25s.tokenize(split, stopwords="en", return_ids=False, show_progress=False)


def _documents(config: CorpusConfig) -> Iterator[tuple[str, str]]:
    from pydoc_data.topics import topics

    for name in sorted(topics):
        yield f"topic: {name}", topics[name]
    # Built-ins are written in C: their docstrings exist only on the live objects.
    for name, obj in sorted(vars(builtins).items()):
        if not name.startswith("_") and callable(obj) and isinstance(obj.__doc__, str):
            yield f"builtins.{name}", obj.__doc__
    for module, path in itertools.islice(_source_files(config), config.max_files):
        yield from _docstrings(module, path)


def _source_files(config: CorpusConfig) -> Iterator[tuple[str, Path]]:
    yield from _walk(Path(sysconfig.get_paths()["stdlib"]), "")
    for package in config.packages:
        spec = importlib.util.find_spec(package)  # finds without importing the package
        if spec is not None and spec.submodule_search_locations:
            root = Path(next(iter(spec.submodule_search_locations)))
            yield from itertools.islice(_walk(root, package), config.max_package_files)


def _walk(root: Path, prefix: str) -> Iterator[tuple[str, Path]]:
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if _SKIP_DIRS.intersection(parts) or any(p.startswith("_") for p in parts[:-1]):
            continue
        names = [prefix, *parts] if prefix else list(parts)
        if names[-1] == "__init__":
            names.pop()
        elif names[-1].startswith("_"):
            continue
        if names:
            yield ".".join(names), path


def _docstrings(module: str, path: Path) -> Iterator[tuple[str, str]]:
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, OSError):
        return  # a file this Python cannot parse (a template, another version's syntax)
    if doc := ast.get_docstring(tree):
        yield module, doc
    for node in tree.body:
        yield from _definition(module, node)
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for member in node.body:
                yield from _definition(f"{module}.{node.name}", member)


def _definition(prefix: str, node: ast.AST) -> Iterator[tuple[str, str]]:
    if not isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        return
    if node.name.startswith("_"):
        return
    doc = ast.get_docstring(node)
    if doc:
        yield f"{prefix}.{node.name}", doc


@functools.cache  # reading package metadata takes milliseconds, and every session asks
def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
