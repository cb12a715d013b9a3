"""Where concepts are looked up: the CDM's vocabulary tables, falling back to the bundled subset.

:class:`VocabularySource` answers the questions concept-set resolution asks (which concept has this
code or name, what lies below it, what does a source code map to) from whatever a CDM holds, and
says which table answered (a *route*). Descendants come from ``concept_ancestor`` when the CDM has
it; otherwise from every other route available: the bundled ``concept_ancestor``, a walk of
``concept_relationship`` (the CDM's, else the bundled one), ``drug_strength``, and ``concept``
itself (RxNorm drugs and dose forms whose name contains an ingredient, ATC classes below an ATC
code). Only concept ids and names (vocabulary, not patient data) leave the database.
"""

from __future__ import annotations

from typing import Any, ClassVar

import ibis
import ibis.expr.types as ir
import pandas as pd

from follicle.vocab.closure import DOWNWARD_RELATIONSHIPS, descendant_closure
from follicle.vocab.names import DRUG_CLASSES, DRUG_VOCABULARIES, drugs_containing, name_pattern

# route names, as reported per concept set (see :mod:`follicle.vocab.resolve`)
CODE, BUNDLED_CODE = "concept", "bundled concept"
ANCESTOR, BUNDLED_ANCESTOR = "concept_ancestor", "bundled concept_ancestor"
RELATIONSHIP, BUNDLED_RELATIONSHIP = "concept_relationship", "bundled concept_relationship"
DRUG_STRENGTH = "drug_strength"
DRUG_NAME = "drug name"
ATC_CODE = "ATC code"
SOURCE_VALUE, SOURCE_CONCEPT, MAPPED = "source value", "source concept", "mapped"

#: every route, in the order they are tried and reported
ROUTES = (CODE, BUNDLED_CODE, ANCESTOR, BUNDLED_ANCESTOR, RELATIONSHIP, BUNDLED_RELATIONSHIP, DRUG_STRENGTH,
          DRUG_NAME, ATC_CODE, SOURCE_VALUE, SOURCE_CONCEPT, MAPPED)


#: longest list of ids written into a query as literals (longer lists are joined as a table)
MAX_IN_LIST = 1000
_INFO = ("concept_name", "vocabulary_id", "concept_class_id", "standard_concept", "concept_code")


def table_or_none(con: Any, name: str, database: Any = None) -> ir.Table | None:
    """The table *name* of *con*, or None when it does not exist.

    (Asked by opening the table rather than through ``list_tables``, which Ibis 12 cannot run
    on DuckDB 2.0.)
    """
    try:
        return con.table(name, database=database)
    except Exception:  # noqa: BLE001 - each backend raises its own not-found error
        return None


def _join(words: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _load_bundled() -> dict[str, Any]:
    """The bundled vocabulary subset (:func:`follicle.vocab.bundled.vocabulary_tables`), as Arrow
    tables (an engine reads them in place; a pandas copy would be converted back)."""
    from follicle.vocab import bundled

    return {k.lower(): v for k, v in bundled.vocabulary_tables().items()}


class VocabularySource:
    """Vocabulary tables of a CDM (Ibis connection), falling back table by table to the bundled subset.

    Parameters
    ----------
    con : Ibis backend
        The connection holding the CDM.
    database : str or tuple, optional
        Schema (or ``(catalog, schema)``) of the CDM tables; None for the default.
    bundled : dict of table name to data frame, optional
        Stand-in vocabulary tables; None loads the bundled subset
        (:func:`follicle.vocab.bundled.vocabulary_tables`), ``{}`` uses none.

    Examples
    --------
    >>> import ibis
    >>> vocab = VocabularySource(ibis.duckdb.connect())   # an empty database: the bundled subset answers
    >>> sorted(vocab.find("rxname", "baricitinib"))
    [1510627]
    >>> vocab.found_in("rxname", "baricitinib")
    'bundled concept'
    """

    def __init__(self, con: Any, *, database: Any = None, bundled: dict[str, pd.DataFrame] | None = None) -> None:
        self.con = con
        self.database = database
        self._bundled_frames = None if bundled is None else {k.lower(): v for k, v in bundled.items()}
        self._cdm: dict[str, ir.Table | None] = {}
        self._bundled: dict[str, ir.Table | None] = {}
        self._codes: dict[tuple[str, str], set[int]] = {}
        self._where: dict[tuple[str, str], str] = {}
        self._icd: dict[str, list[tuple[int, str]]] = {}
        self._desc: dict[int, set[int]] = {}
        self._routes: dict[frozenset[int], dict[str, set[int]]] = {}
        self._named: dict[str, set[int]] = {}
        self._info: dict[int, dict[str, Any] | None] = {}
        self._maps: dict[int, set[int]] = {}

    # -- tables -------------------------------------------------------------------------------
    def cdm_table(self, name: str) -> ir.Table | None:
        """The CDM's table *name* if it exists and has rows, else None."""
        if name not in self._cdm:
            table = table_or_none(self.con, name, self.database)
            if table is not None and int(self.con.execute(table.limit(1).count())) == 0:
                table = None
            self._cdm[name] = table
        return self._cdm[name]

    def bundled_table(self, name: str) -> ir.Table | None:
        """The bundled subset's table *name* as an in-memory Ibis table, or None."""
        if name not in self._bundled:
            if self._bundled_frames is None:
                self._bundled_frames = _load_bundled()
            frame = self._bundled_frames.get(name)
            self._bundled[name] = ibis.memtable(frame) if frame is not None and len(frame) else None
        return self._bundled[name]

    def sources(self, name: str) -> list[ir.Table]:
        """The CDM table then the bundled one, whichever exist."""
        return [t for t in (self.cdm_table(name), self.bundled_table(name)) if t is not None]

    @property
    def has_ancestor(self) -> bool:
        """Whether the CDM has a non-empty ``concept_ancestor`` (then it alone gives descendants)."""
        return self.cdm_table("concept_ancestor") is not None

    def _ids(self, expr: ir.Table, column: str) -> set[int]:
        frame = self.con.execute(expr.select(expr[column]).distinct())
        return {int(v) for v in frame[column].dropna()}

    @staticmethod
    def _among(table: ir.Table, column: str, ids: list[int]) -> ir.Table:
        """Rows of *table* whose *column* is one of *ids*: an IN list when short, else a semi-join
        on a small in-memory table (a SQL text of thousands of literals compiles slowly)."""
        if len(ids) <= MAX_IN_LIST:
            return table.filter(table[column].isin(ids))
        keys = ibis.memtable(pd.DataFrame({"_id": pd.Series(ids, dtype="int64")}))
        return table.semi_join(keys, table[column] == keys._id)

    # -- codes and names ----------------------------------------------------------------------
    _KINDS: ClassVar[dict[str, tuple[str, str | None, str]]] = {  # kind -> (vocabulary_id, concept_class_id, column)
        "rxcode": ("RxNorm", None, "concept_code"),
        "rxname": ("RxNorm", "Ingredient", "concept_name"),
        "atc": ("ATC", None, "concept_code"),
        "loinc": ("LOINC", None, "concept_code"),
    }

    def prefetch(self, kind: str, keys: list[str]) -> None:
        """Look up many codes (or ingredient names) of one kind at once: one query per source."""
        vocabulary, klass, column = self._KINDS[kind]
        todo = sorted({k for k in keys if (kind, k) not in self._codes})
        for route, concept in ((CODE, self.cdm_table("concept")), (BUNDLED_CODE, self.bundled_table("concept"))):
            if not todo or concept is None:
                continue
            col = concept[column].lower() if kind == "rxname" else concept[column]
            pred = (concept.vocabulary_id == vocabulary) & col.isin(todo)
            if klass:
                pred = pred & (concept.concept_class_id == klass)
            frame = self.con.execute(concept.filter(pred).select(key=col, concept_id=concept.concept_id).distinct())
            for key, cid in zip(frame["key"], frame["concept_id"]):
                self._codes.setdefault((kind, str(key)), set()).add(int(cid))
                self._where[(kind, str(key))] = route
            todo = [k for k in todo if (kind, k) not in self._codes]
        for k in todo:
            self._codes[(kind, k)] = set()

    def find(self, kind: str, key: str) -> set[int]:
        """Concept ids of one code or ingredient name (cached; see :meth:`prefetch`).

        *kind* is ``"rxcode"`` (RXCUI), ``"rxname"`` (RxNorm ingredient name, lower case),
        ``"atc"`` or ``"loinc"``.
        """
        if (kind, key) not in self._codes:
            self.prefetch(kind, [key])
        return set(self._codes[(kind, key)])

    def found_in(self, kind: str, key: str) -> str | None:
        """The route that found *key*: ``"concept"`` (the CDM's) or ``"bundled concept"``; None if not found."""
        self.find(kind, key)
        return self._where.get((kind, key))

    def concept_info(self, ids: set[int]) -> dict[int, dict[str, Any]]:
        """``concept_name``, ``vocabulary_id``, ``concept_class_id``, ``standard_concept`` and
        ``concept_code`` of each known id (the CDM's concept first, then the bundled one)."""
        todo = sorted(i for i in ids if i not in self._info)
        for concept in self.sources("concept"):
            if not todo:
                break
            cols = [c for c in _INFO if c in concept.columns]
            frame = self.con.execute(self._among(concept, "concept_id", todo).select("concept_id", *cols))
            for row in frame.to_dict(orient="records"):
                self._info.setdefault(int(row["concept_id"]), {k: row.get(k) for k in _INFO})
            todo = [i for i in todo if i not in self._info]
        for i in todo:
            self._info[i] = None
        return {i: self._info[i] for i in ids if self._info.get(i) is not None}  # type: ignore[misc]

    def icd10cm_concepts(self, categories: list[str]) -> list[tuple[int, str]]:
        """(concept_id, normalised code) of ICD10CM concepts in the given 3-character categories."""
        todo = sorted({c for c in categories if c not in self._icd})
        for concept in self.sources("concept"):
            if not todo:
                break
            norm = concept.concept_code.upper().replace(".", "")
            pred = (concept.vocabulary_id == "ICD10CM") & norm.substr(0, 3).isin(todo)
            frame = self.con.execute(concept.filter(pred).select(concept_id=concept.concept_id, code=norm).distinct())
            for cid, code in zip(frame["concept_id"], frame["code"]):
                self._icd.setdefault(str(code)[:3], []).append((int(cid), str(code)))
            todo = [c for c in todo if c not in self._icd]
        for c in todo:
            self._icd[c] = []
        return [row for c in categories for row in self._icd[c]]

    def maps_to(self, ids: set[int]) -> set[int]:
        """Standard concepts that the (source) concepts *ids* map to (``Maps to``): from the CDM's
        ``concept_relationship``, and from the bundled one for ids the CDM does not map (cached per
        id; see :meth:`prefetch_maps_to`)."""
        self.prefetch_maps_to(ids)
        return set().union(*(self._maps[i] for i in ids))

    def prefetch_maps_to(self, ids: set[int]) -> None:
        """``Maps to`` targets of many source concepts at once: one query per source (the CDM's
        ``concept_relationship``, then the bundled one for the ids the CDM does not map)."""
        todo = sorted(i for i in ids if i not in self._maps)
        for rel in self.sources("concept_relationship"):
            if not todo:
                break
            maps = rel.filter(rel.relationship_id == "Maps to")
            frame = self.con.execute(self._among(maps, "concept_id_1", todo).select("concept_id_1", "concept_id_2").distinct())
            for a, b in zip(frame["concept_id_1"], frame["concept_id_2"]):
                self._maps.setdefault(int(a), set()).add(int(b))
            todo = [i for i in todo if i not in self._maps]
        for i in todo:
            self._maps[i] = set()

    def mapped_from(self, ids: set[int]) -> set[int]:
        """Source concepts that map to the standard concepts *ids* (``Maps to`` read backwards), as
        an ATLAS concept set's ``includeMapped`` takes them: from the CDM's ``concept_relationship``
        and the bundled one."""
        out: set[int] = set()
        for rel in self.sources("concept_relationship"):
            if ids:
                maps = rel.filter(rel.relationship_id == "Maps to")
                out |= {i for i in self._ids(self._among(maps, "concept_id_2", sorted(ids)), "concept_id_1")}
        return out - set(ids)

    # -- descendants --------------------------------------------------------------------------
    def prefetch_descendants(self, ids: set[int]) -> None:
        """Descendants of many concepts through the CDM's concept_ancestor, in one query."""
        ancestor = self.cdm_table("concept_ancestor")
        todo = sorted(i for i in ids if i not in self._desc)
        if ancestor is None or not todo:
            return
        expr = ancestor.filter(ancestor.ancestor_concept_id.isin(todo)).select(
            a=ancestor.ancestor_concept_id, d=ancestor.descendant_concept_id
        )
        frame = self.con.execute(expr.distinct())
        for i in todo:
            self._desc[i] = {i}
        for a, d in zip(frame["a"], frame["d"]):
            self._desc[int(a)].add(int(d))

    def prefetch_drug_names(self, names: set[str]) -> None:
        """Concepts of RxNorm drugs and dose forms whose name contains each ingredient of *names*
        (lower case), one query per source over ``concept``."""
        todo = sorted(n for n in names if n not in self._named)
        if not todo:
            return
        for n in todo:
            self._named[n] = set()
        for concept in self.sources("concept"):
            name = concept.concept_name.lower()
            expr = concept.filter(concept.vocabulary_id.isin(DRUG_VOCABULARIES), concept.concept_class_id.isin(DRUG_CLASSES),
                                  name.re_search(name_pattern(todo))).select(concept_id=concept.concept_id, name=name)
            frame = self.con.execute(expr.distinct())
            for ingredient, ids in drugs_containing(todo, frame["name"], frame["concept_id"]).items():
                self._named[ingredient] |= ids

    def descendant_routes(self, ids: set[int]) -> dict[str, set[int]]:
        """*ids* with their descendants, by route (each route's set includes the ids it started from).

        With a CDM ``concept_ancestor``: that table, the bundled one for ids it does not hold, and
        ``drug_strength`` when present. Without it: every other route (see the module docstring).
        """
        key = frozenset(ids)
        if key in self._routes:
            return self._routes[key]
        routes: dict[str, set[int]] = {}
        if self.has_ancestor:
            self.prefetch_descendants(set(ids))
            routes[ANCESTOR] = set().union(*(self._desc[i] for i in ids)) if ids else set()
            unknown = {i for i in ids if self._desc[i] == {i}}  # no descendants there: maybe a bundled (local) id
            if unknown and (found := self._bundled_descendants(unknown)) - unknown:
                routes[BUNDLED_ANCESTOR] = found
        else:
            if found := self._bundled_descendants(set(ids)):
                routes[BUNDLED_ANCESTOR] = found
            start = set(ids).union(*routes.values())
            rel = self.cdm_table("concept_relationship")
            route = RELATIONSHIP
            if rel is None:
                rel, route = self.bundled_table("concept_relationship"), BUNDLED_RELATIONSHIP
            if rel is not None:
                routes[route] = set(descendant_closure(start, self._children_of(rel))) - (start - set(ids))
            routes |= self._concept_routes(set(ids))
        if (strength := self.cdm_table("drug_strength")) is not None and ids:
            routes[DRUG_STRENGTH] = set(ids) | self._ids(
                strength.filter(strength.ingredient_concept_id.isin(sorted(ids))), "drug_concept_id")
        self._routes[key] = routes
        return routes

    def descendants(self, ids: set[int]) -> tuple[set[int], str | None]:
        """*ids* with all their descendants (every route), and a note naming the routes when the
        CDM has no ``concept_ancestor``."""
        if not ids:
            return set(), None
        routes = self.descendant_routes(ids)
        result = set(ids).union(*routes.values())
        if self.has_ancestor:
            return result, None
        used = list(routes)
        if not used:
            return result, "the CDM has no concept_ancestor and no relationships are available: concepts used without descendants"
        return result, ("the CDM has no concept_ancestor; descendants from " + _join(used)
                        + ": concepts these routes do not reach are missed (counted in the resolution report)")

    def _bundled_descendants(self, ids: set[int]) -> set[int]:
        anc = self.bundled_table("concept_ancestor")
        if anc is None or not ids:
            return set()
        return set(ids) | self._ids(anc.filter(anc.ancestor_concept_id.isin(sorted(ids))), "descendant_concept_id")

    def _concept_routes(self, ids: set[int]) -> dict[str, set[int]]:
        """Descendants found in ``concept`` alone: RxNorm drugs named after an ingredient among
        *ids*, and for ATC classes the ATC classes below them and their ingredients' drugs."""
        info = self.concept_info(ids)
        ingredients = {i: str(r["concept_name"]).lower() for i, r in info.items()
                       if r["vocabulary_id"] in DRUG_VOCABULARIES and r["concept_class_id"] == "Ingredient"}
        out: dict[str, set[int]] = {}
        atc = [str(r["concept_code"]).upper() for r in info.values() if r["vocabulary_id"] == "ATC"]
        if atc:
            below = self._atc_below(atc)
            out[ATC_CODE] = set(ids) | set(below)
            names = {str(n).lower() for n in below.values()}
            self.prefetch("rxname", sorted(names))
            for n in names:
                ingredients |= {i: n for i in self.find("rxname", n)}
        if ingredients:
            self.prefetch_drug_names(set(ingredients.values()))
            out[DRUG_NAME] = set(ingredients).union(*(self._named[n] for n in ingredients.values()))
        return out

    def _atc_below(self, codes: list[str]) -> dict[int, str]:
        """ATC concepts whose code starts with one of *codes* (the ATC hierarchy is in its codes): id -> name."""
        out: dict[int, str] = {}
        for concept in self.sources("concept"):
            code = concept.concept_code.upper()
            pred = ibis.or_(*[code.startswith(c) for c in codes])
            frame = self.con.execute(concept.filter(concept.vocabulary_id == "ATC", pred)
                                     .select("concept_id", "concept_name").distinct())
            for cid, name in zip(frame["concept_id"], frame["concept_name"]):
                out.setdefault(int(cid), str(name))
        return out

    def _children_of(self, rel: ir.Table) -> Any:
        def children_of(parents: frozenset[int]) -> list[tuple[int, int]]:
            expr = rel.filter(
                rel.concept_id_1.isin(sorted(parents)), rel.relationship_id.isin(list(DOWNWARD_RELATIONSHIPS))
            ).select("concept_id_1", "concept_id_2")
            frame = self.con.execute(expr.distinct())
            return list(zip(frame["concept_id_1"].astype(int), frame["concept_id_2"].astype(int)))

        return children_of

    # -- what the vocabulary can place ----------------------------------------------------------
    def placed(self, ids: set[int], *, drug_names: bool) -> set[int]:
        """The concepts of *ids* whose place in the hierarchy the vocabulary knows, so that
        membership of a concept set with descendants can be decided: a row in ``concept_ancestor``
        (the CDM's; the bundled one), or without one a parent in ``concept_relationship`` or, when
        *drug_names*, an RxNorm drug name (which lists every ingredient)."""
        todo = sorted(ids)
        out: set[int] = set()
        if not todo:
            return out
        anc = self.cdm_table("concept_ancestor")
        tables = [t for t in (anc, self.bundled_table("concept_ancestor")) if t is not None]
        for t in tables:
            out |= self._ids(self._among(t, "descendant_concept_id", todo), "descendant_concept_id")
        if anc is None:
            for rel in self.sources("concept_relationship"):
                rest = [i for i in todo if i not in out]
                if rest:
                    down = rel.filter(rel.relationship_id.isin(list(DOWNWARD_RELATIONSHIPS)))
                    out |= self._ids(self._among(down, "concept_id_2", rest), "concept_id_2")
            if drug_names:
                info = self.concept_info({i for i in todo if i not in out})
                out |= {i for i, r in info.items()
                        if r["vocabulary_id"] in DRUG_VOCABULARIES and r["concept_class_id"] in DRUG_CLASSES + ("Ingredient",)}
        return out

    def known(self, ids: set[int]) -> set[int]:
        """The concepts of *ids* that ``concept`` (the CDM's or the bundled one) holds."""
        return set(self.concept_info(ids))
