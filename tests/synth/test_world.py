"""The person-level API used by the statistics helpers (no OMOP)."""

from __future__ import annotations

import numpy as np
import pytest

from follicle.errors import InputError


def test_cohort_frame_shape_and_consistency(world):
    df = world.cohort_frame("jaki", "corticosteroid")
    assert set(df.treatment.unique()) == {0, 1}
    assert (df.index_day > 0).all()
    for so in world.config.study_outcomes:
        t, e, prior = df[f"{so.name}_time"], df[f"{so.name}_event"], df[f"{so.name}_prior"]
        assert (t[~prior] >= 0).all()
        assert not (e & prior).any()
        if so.group == "neuropsychiatric":
            assert not prior.any()  # history excluded from the cohort
    # events never after censoring
    assert (df.depressive_disorders_time <= df.censor_day - df.index_day).all()


def test_cohort_frame_rejects_unknown_class(world):
    with pytest.raises(InputError, match="class"):
        world.cohort_frame("jaki", "biologic")


def test_outcome_day_is_first_of_processes(world):
    mood = world.outcome_day("mood_disorders")
    dep, other = world._first["depression"], world._first["other_mood"]
    big = np.iinfo(np.int64).max
    expect = np.minimum(np.where(dep < 0, big, dep), np.where(other < 0, big, other))
    assert np.array_equal(mood, np.where(expect == big, -1, expect))
    with pytest.raises(InputError, match="unknown outcome"):
        world.outcome_day("baldness")


def test_persons_frame_has_one_row_per_person(world):
    df = world.persons
    assert len(df) == world.n and df.person_id.is_unique
    assert {"class1", "index_day", "event_vte", "obs_end", "salt_baseline", "responder"} <= set(df.columns)
