"""RxNorm drugs found by name: the route for a CDM whose vocabulary is ``concept`` alone.

RxNorm names a clinical or branded drug, a drug form and a pack after every ingredient it holds
("prednisone 5 MG Oral Tablet", "cyclosporine, modified 100 MG Oral Capsule [Neoral]",
"{21 (ethinyl estradiol 0.03 MG / levonorgestrel 0.15 MG Oral Tablet) } Pack"), so a drug contains
an ingredient exactly when the ingredient's name appears in the drug's name as whole words:
"prednisolone" does not match "methylprednisolone", nor "prednisone" "prednisolone".

References
----------
National Library of Medicine. A Guide to RxNorm, I. "Introduction and Overview": "the name of a
clinical drug combines its ingredients, strengths, and form" (Acetaminophen 500 MG Oral Tablet;
Acetaminophen 500 MG Oral Tablet [Tylenol] for the branded drug).
https://www.nlm.nih.gov/research/umls/rxnorm/overview.html
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: vocabularies whose drug names list their ingredients
DRUG_VOCABULARIES = ("RxNorm", "RxNorm Extension")
#: RxNorm concept classes below an ingredient (drugs, their components, forms and packs)
DRUG_CLASSES = (
    "Clinical Drug", "Branded Drug", "Quant Clinical Drug", "Quant Branded Drug",
    "Clinical Drug Comp", "Branded Drug Comp", "Clinical Drug Form", "Branded Drug Form",
    "Clinical Pack", "Branded Pack", "Clinical Pack Box", "Branded Pack Box", "Clinical Drug Box",
    "Branded Drug Box", "Quant Clinical Box", "Quant Branded Box", "Marketed Product",
)
_SPECIAL = re.compile(r"([\\.^$|?*+()\[\]{}])")


def _literal(name: str) -> str:
    """*name* with regular-expression characters escaped (the same in RE2, PostgreSQL and Python)."""
    return _SPECIAL.sub(r"\\\1", name)


def name_pattern(ingredients: Iterable[str]) -> str:
    """A regular expression matching a lower-case drug name that contains any of *ingredients*
    (lower case) as whole words; the same syntax works in DuckDB, PostgreSQL and Python."""
    alternatives = "|".join(_literal(n) for n in sorted(set(ingredients)))
    return f"(^|[^a-z0-9])({alternatives})([^a-z0-9]|$)"


def contains_ingredient(drug_name: str, ingredient: str) -> bool:
    """Whether *drug_name* names *ingredient* (whole words, case-insensitive)."""
    return re.search(name_pattern([ingredient.lower()]), drug_name.lower()) is not None


def drugs_containing(ingredients: Iterable[str], names: Iterable[str], ids: Iterable[int]) -> dict[str, set[int]]:
    """For each ingredient, the ids among (*names*, *ids*) whose name contains it."""
    ingredients = sorted(set(ingredients))
    patterns = {n: re.compile(name_pattern([n])) for n in ingredients}
    out: dict[str, set[int]] = {n: set() for n in ingredients}
    for name, cid in zip(names, ids):
        low = str(name).lower()
        for n, pat in patterns.items():
            if n in low and pat.search(low):
                out[n].add(int(cid))
    return out
