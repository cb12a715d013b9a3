"""Vocabularies: concept sets as researchers write them, resolved against the CDM at hand.

* :mod:`follicle.vocab.conceptset`: concept sets as data (``ICD10CM:L63``, ``RxNorm:baricitinib``, ...);
* :mod:`follicle.vocab.source`: where concepts are looked up, route by route (``concept_ancestor``,
  ``concept_relationship``, ``drug_strength``, RxNorm drug names, ATC codes, the bundled subset);
* :mod:`follicle.vocab.resolve`: a concept set as concept ids, source codes and the routes that found them
  (reusable for any cohort language: ``resolve_concept_set`` with a :class:`VocabularySource`);
* :mod:`follicle.vocab.names`, :mod:`follicle.vocab.closure`: RxNorm name matching and descendant closure;
* :mod:`follicle.vocab.athena`: the files of an Athena download (loaded by :mod:`follicle.cdm.vocabulary`);
* :mod:`follicle.vocab.bundled`, :mod:`follicle.vocab.local`: the bundled subset and Follicle's local concepts.
"""
