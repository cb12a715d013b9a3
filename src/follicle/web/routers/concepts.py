"""The Concepts page: search the vocabulary, a concept's descendants, its record and person counts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from follicle.errors import FollicleError
from follicle.privacy import suppress_count
from follicle.web.deps import cached, cdm
from follicle.web.templating import is_htmx, render

router = APIRouter(prefix="/concepts")


@router.get("", response_class=HTMLResponse)
def concepts_page(request: Request, q: str = "") -> HTMLResponse:
    from follicle.vocab.resolve import VocabularySource
    from follicle.vocab.search import search_concepts

    hits: list[dict[str, Any]] = []
    error = None
    if q.strip():
        try:
            with cdm(request) as con:
                hits = search_concepts(VocabularySource(con), q, limit=100).to_dict(orient="records")
        except FollicleError as exc:
            error = str(exc)
    template = "fragments/concept_hits.html.j2" if is_htmx(request) else "concepts.html.j2"
    return render(request, template, q=q, hits=hits, error=error)


@router.get("/{concept_id}", response_class=HTMLResponse)
def concept_page(request: Request, concept_id: str) -> HTMLResponse:
    from follicle.cdm.concept_counts import concept_counts, persons_with_any
    from follicle.vocab.resolve import VocabularySource
    from follicle.vocab.search import concept_details, descendants

    if not concept_id.isdigit() or len(concept_id) > 12:
        raise HTTPException(404)
    cid = int(concept_id)
    k = request.app.state.settings.min_cell_count

    def compute() -> dict[str, Any]:
        with cdm(request) as con:
            vocab = VocabularySource(con)
            detail = concept_details(vocab, [cid]).iloc[0].to_dict()
            desc, n_desc, note = descendants(vocab, cid)
            ids = {cid, *desc["concept_id"].astype(int)}
            if n_desc > len(desc):
                ids = vocab.descendants({cid})[0]
            alone = concept_counts(con, [cid])
            with_desc = concept_counts(con, ids)
            return {"detail": detail, "descendants": desc.to_dict(orient="records"), "n_descendants": n_desc,
                    "note": note, "alone": alone.to_dict(orient="records"), "with_desc": with_desc.to_dict(orient="records"),
                    "persons_alone": persons_with_any(con, [cid]), "persons_with_desc": persons_with_any(con, ids)}

    info = cached(request, f"concept:{cid}", compute)
    if info["detail"].get("source") == "none" and not info["alone"]:
        raise HTTPException(404)

    def sup(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r | {"records": suppress_count(r["records"], k), "persons": suppress_count(r["persons"], k)} for r in rows]

    return render(request, "concept.html.j2", c=info["detail"], descendants=info["descendants"],
                  n_descendants=info["n_descendants"], note=info["note"], alone=sup(info["alone"]),
                  with_desc=sup(info["with_desc"]), persons_alone=suppress_count(info["persons_alone"], k),
                  persons_with_desc=suppress_count(info["persons_with_desc"], k))
