"""docs/cds-rules.md is generated from the knowledge base and must not be stale."""

from __future__ import annotations

from follicle.cds.kb import default_kb
from follicle.cds.rulesdoc import DOC, render


def test_cds_rules_doc_is_current():
    assert DOC.read_text() == render(), "docs/cds-rules.md is stale: run python -m follicle.cds.rulesdoc"


def test_every_rule_is_listed_with_its_section():
    text = DOC.read_text()
    for r in default_kb().rules:
        assert f"`{r.id}`" in text, r.id
