"""Find concepts by id, code or name, and list a concept's descendants.

Reads the CDM's ``concept`` table when it has rows, and the bundled vocabulary subset too (so a
CDM without vocabulary tables can still be searched for the codes Follicle's studies use);
each hit says which of the two it came from. Queries are Ibis expressions: a name is matched as
a case-insensitive substring (no pattern characters are interpreted), a code exactly or, with a
trailing ``*``, as a prefix.
"""

from __future__ import annotations

import re
from typing import Any

import ibis
import pandas as pd

from follicle.errors import InputError
from follicle.vocab.resolve import VocabularySource

COLUMNS = ("concept_id", "concept_name", "vocabulary_id", "concept_code", "domain_id", "concept_class_id",
           "standard_concept")
#: Vocabularies named in a ``VOCAB:CODE`` query, as OMOP spells them
_VOCABULARIES = {"icd10cm": "ICD10CM", "icd10": "ICD10", "snomed": "SNOMED", "rxnorm": "RxNorm", "atc": "ATC",
                 "loinc": "LOINC", "cpt4": "CPT4", "icd9cm": "ICD9CM", "hcpcs": "HCPCS", "ndc": "NDC"}
MAX_QUERY = 200


def parse_query(query: str) -> dict[str, Any]:
    """What a query asks for: ``{"id": int}``, ``{"vocabulary", "code", "prefix"}`` or ``{"text"}``."""
    q = " ".join(str(query).split())
    if not q:
        raise InputError("search: type a concept id, a code (e.g. ICD10CM:L63 or L63*) or part of a name")
    if len(q) > MAX_QUERY:
        raise InputError(f"search: at most {MAX_QUERY} characters (got {len(q)})")
    if re.fullmatch(r"\d{1,12}", q):
        return {"id": int(q)}
    m = re.fullmatch(r"([A-Za-z][A-Za-z0-9 ]{1,20}):\s*(\S+)", q)
    if m:
        vocab = _VOCABULARIES.get(m.group(1).lower().replace(" ", ""), m.group(1))
        code = m.group(2)
        return {"vocabulary": vocab, "code": code.rstrip("*"), "prefix": code.endswith("*")}
    if q.endswith("*") and " " not in q:
        return {"vocabulary": None, "code": q[:-1], "prefix": True}
    return {"text": q}


def search_concepts(vocab: VocabularySource, query: str, *, limit: int = 50) -> pd.DataFrame:
    """Concepts matching *query* (see :func:`parse_query`), at most *limit*, standard concepts and exact
    code matches first; columns :data:`COLUMNS` plus ``source`` (``cdm`` or ``bundled``)."""
    want = parse_query(query)
    frames = []
    for source, concept in (("cdm", vocab.cdm_table("concept")), ("bundled", vocab.bundled_table("concept"))):
        if concept is None:
            continue
        c = concept
        if "id" in want:
            pred = c.concept_id == want["id"]
            exact = ibis.literal(True)
        elif "code" in want:
            code = want["code"]
            norm = c.concept_code.upper().replace(".", "")
            target = code.upper().replace(".", "")
            pred = norm.startswith(target) if want["prefix"] else norm == target
            if want["vocabulary"]:
                # RxNorm:baricitinib names an ingredient, as in a study's concept sets
                named = c.concept_name.lower() == code.lower()
                pred = (pred | named) & (c.vocabulary_id.lower() == want["vocabulary"].lower())
            exact = norm == target
        else:
            text = want["text"].lower()
            pred = c.concept_name.lower().contains(text) | (c.concept_code.upper() == want["text"].upper())
            exact = c.concept_code.upper() == want["text"].upper()
        expr = (c.filter(pred)
                .mutate(_exact=exact, _std=c.standard_concept.fill_null("") == "S", _len=c.concept_name.length())
                .order_by([ibis.desc("_exact"), ibis.desc("_std"), "_len", "concept_id"])
                .limit(limit)
                .select(*COLUMNS, "_exact", "_std", "_len"))
        frame = vocab.con.execute(expr)
        frame["source"] = source
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*COLUMNS, "source"])
    out = pd.concat(frames, ignore_index=True).drop_duplicates("concept_id", keep="first")
    out = out.sort_values(["_exact", "_std", "_len", "concept_id"], ascending=[False, False, True, True])
    return out.drop(columns=["_exact", "_std", "_len"]).head(limit).reset_index(drop=True)


def concept_details(vocab: VocabularySource, ids: list[int]) -> pd.DataFrame:
    """The :data:`COLUMNS` of the concepts *ids* (CDM first, then the bundled subset)."""
    found: list[pd.DataFrame] = []
    todo = sorted(set(int(i) for i in ids))
    for source, concept in (("cdm", vocab.cdm_table("concept")), ("bundled", vocab.bundled_table("concept"))):
        if concept is None or not todo:
            continue
        frame = vocab.con.execute(concept.filter(concept.concept_id.isin(todo)).select(*COLUMNS))
        frame["source"] = source
        found.append(frame)
        todo = sorted(set(todo) - set(frame["concept_id"].astype(int)))
    out = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=[*COLUMNS, "source"])
    if todo:
        out = pd.concat([out, pd.DataFrame({"concept_id": todo, "concept_name": "(not in any concept table)",
                                            "source": "none"})], ignore_index=True)
    return out.reset_index(drop=True)


def descendants(vocab: VocabularySource, concept_id: int, *, limit: int = 500) -> tuple[pd.DataFrame, int, str | None]:
    """The descendants of *concept_id* (itself excluded) with their details, the total number, and a
    note when the hierarchy came from a fallback (see :meth:`VocabularySource.descendants`)."""
    ids, note = vocab.descendants({int(concept_id)})
    ids.discard(int(concept_id))
    shown = sorted(ids)[:limit]
    frame = concept_details(vocab, shown) if shown else pd.DataFrame(columns=[*COLUMNS, "source"])
    return frame.sort_values(["concept_name"]).reset_index(drop=True), len(ids), note
