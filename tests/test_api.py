"""The public Python API (``import follicle``): lazy, documented in numpydoc, examples that run."""

from __future__ import annotations

import doctest
import re
import inspect
import subprocess
import sys

import pytest

import follicle

HEAVY = ("pandas", "numpy", "scipy", "ibis", "duckdb", "pyarrow", "pydantic", "sklearn", "matplotlib", "typer")


def test_import_is_light():
    code = "import sys, follicle; print(','.join(m for m in %r if m in sys.modules))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import follicle loaded {out}"


def test_names_resolve_lazily_and_unknown_names_fail():
    assert "run_study" in dir(follicle)
    assert follicle.salt_score(50, 20, 10, 0) == pytest.approx(26.6)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        follicle.nope  # noqa: B018


@pytest.mark.parametrize("name", [n for n in follicle.__all__ if n != "__version__"])
def test_every_entry_point_has_a_numpydoc_docstring(name):
    obj = getattr(follicle, name)
    doc = inspect.getdoc(obj) or ""
    summary = doc.split("\n", 1)[0]
    assert summary and summary[0].isupper(), f"{name}: no summary line"
    if inspect.isclass(obj):
        assert "Attributes\n----------" in doc or "Parameters\n----------" in doc, name
    else:
        assert "Parameters\n----------" in doc, name
        assert "Returns\n-------" in doc, name
        section = re.split(r"\n\w[\w ]*\n-{3,}\n", doc.split("Parameters\n----------\n", 1)[1])[0]
        for param in inspect.signature(obj).parameters:
            assert re.search(rf"\b{param}\b", section), f"{name}: parameter {param!r} not documented"


@pytest.mark.parametrize("name", ["connect", "ConceptSet", "StudySpec", "salt_score", "aa_iga", "resolve_concept_sets"])
def test_docstring_examples_run(name):
    obj = getattr(follicle, name)
    finder = doctest.DocTestFinder(recurse=False)
    tests = finder.find(obj, name, globs=vars(inspect.getmodule(obj)).copy())
    assert tests and tests[0].examples, f"{name}: no Examples"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for t in tests:
        runner.run(t)
    assert runner.failures == 0


def test_vocabulary_source_example():
    from follicle.vocab.source import VocabularySource

    (t,) = doctest.DocTestFinder(recurse=False).find(VocabularySource, "VocabularySource",
                                                      globs={"VocabularySource": VocabularySource})
    runner = doctest.DocTestRunner()
    runner.run(t)
    assert runner.failures == 0 and t.examples
