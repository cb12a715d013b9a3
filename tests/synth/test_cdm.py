"""The world writes a valid CDM: events inside observation, ids unique, codes resolvable."""

from __future__ import annotations

import duckdb
import pytest

EVENT_TABLES = [
    ("condition_occurrence", "condition_start_date", "condition_start_date"),
    ("drug_exposure", "drug_exposure_start_date", "drug_exposure_end_date"),
    ("measurement", "measurement_date", "measurement_date"),
    ("visit_occurrence", "visit_start_date", "visit_end_date"),
    ("procedure_occurrence", "procedure_date", "procedure_date"),
    ("observation", "observation_date", "observation_date"),
    ("death", "death_date", "death_date"),
]
ID_COLUMNS = [("person", "person_id"), ("observation_period", "observation_period_id"),
              ("visit_occurrence", "visit_occurrence_id"), ("condition_occurrence", "condition_occurrence_id"),
              ("drug_exposure", "drug_exposure_id"), ("measurement", "measurement_id"),
              ("procedure_occurrence", "procedure_occurrence_id"), ("observation", "observation_id")]


@pytest.fixture(scope="module", params=["one block", "streamed in blocks"])
def cdm(request):
    """(world, its CDM): the one-block world written whole, and a 3-block world streamed in 2 chunks."""
    if request.param == "one block":
        return request.getfixturevalue("world"), request.getfixturevalue("cdm_path")
    return request.getfixturevalue("blocks_world"), request.getfixturevalue("streamed_path")


@pytest.fixture(scope="module")
def con(cdm):
    c = duckdb.connect(str(cdm[1]), read_only=True)
    yield c
    c.close()


def one(con, sql: str):
    return con.execute(sql).fetchone()[0]


@pytest.mark.parametrize("table, start, end", EVENT_TABLES)
def test_events_inside_observation_and_ordered(con, table, start, end):
    bad = one(con, f"""select count(*) from {table} x join observation_period o using (person_id)
                       where x.{start} < o.observation_period_start_date or x.{end} > o.observation_period_end_date
                          or x.{end} < x.{start}""")
    assert bad == 0
    assert one(con, f"select count(*) from {table}") > 0


@pytest.mark.parametrize("table, column", ID_COLUMNS)
def test_ids_unique(con, table, column):
    assert one(con, f"select count(*) - count(distinct {column}) from {table}") == 0


def test_one_observation_period_per_person_and_nothing_after_death(con):
    assert one(con, "select count(*) from person") == one(con, "select count(distinct person_id) from observation_period")
    assert one(con, """select count(*) from condition_occurrence c join death d using (person_id)
                       where c.condition_start_date > d.death_date""") == 0
    assert one(con, """select count(*) from person p join observation_period o using (person_id)
                       where year(o.observation_period_start_date) < p.year_of_birth""") == 0


def test_days_supply_sensible(con):
    assert one(con, "select count(*) from drug_exposure where days_supply < 1 or days_supply > 90") == 0
    assert one(con, """select count(*) from drug_exposure
                       where drug_exposure_end_date - drug_exposure_start_date + 1 <> days_supply""") == 0


@pytest.mark.parametrize("table, column", [
    ("condition_occurrence", "condition_concept_id"), ("condition_occurrence", "condition_source_concept_id"),
    ("drug_exposure", "drug_concept_id"), ("drug_exposure", "route_concept_id"),
    ("measurement", "measurement_concept_id"), ("person", "gender_concept_id"),
    ("visit_occurrence", "visit_concept_id"), ("procedure_occurrence", "procedure_concept_id")])
def test_every_concept_is_in_the_vocabulary(con, table, column):
    assert one(con, f"""select count(*) from {table} x left join concept c on x.{column} = c.concept_id
                        where c.concept_id is null and x.{column} <> 0""") == 0


def test_icd_source_codes_map_to_written_standard_concepts(con):
    bad = one(con, """select count(*) from condition_occurrence co
                      join concept s on s.concept_id = co.condition_source_concept_id
                      join concept_relationship r on r.concept_id_1 = s.concept_id and r.relationship_id = 'Maps to'
                      where s.vocabulary_id <> 'ICD10CM' or s.concept_code <> co.condition_source_value
                         or r.concept_id_2 <> co.condition_concept_id""")
    assert bad == 0
    # every L63 code appears, and AA (141933) with descendants covers them all
    codes = {r[0] for r in con.execute("""select distinct condition_source_value from condition_occurrence
                                          where condition_source_value like 'L63%'""").fetchall()}
    assert codes == {"L63.0", "L63.1", "L63.2", "L63.8", "L63.9"}
    n_src = one(con, "select count(*) from condition_occurrence where condition_source_value like 'L63%'")
    n_std = one(con, """select count(*) from condition_occurrence co join concept_ancestor a
                        on a.descendant_concept_id = co.condition_concept_id where a.ancestor_concept_id = 141933""")
    assert n_src == n_std


def test_f32a_only_after_it_existed(con):
    assert one(con, """select count(*) from condition_occurrence where condition_source_value = 'F32.A'
                       and condition_start_date < date '2021-10-01'""") == 0
    assert one(con, "select count(*) from condition_occurrence where condition_source_value = 'F32.A'") > 0


def test_oral_and_topical_ruxolitinib_differ_in_route(con):
    rows = con.execute("""select d.route_concept_id, c.concept_name, count(*) from drug_exposure d
                          join concept_ancestor a on a.descendant_concept_id = d.drug_concept_id
                          join concept c on c.concept_id = d.drug_concept_id
                          where a.ancestor_concept_id = 40244464 group by 1, 2""").fetchall()
    routes = {name: route for route, name, _ in rows}
    assert routes == {"ruxolitinib 10 MG Oral Tablet": 4132161, "ruxolitinib 15 MG/G Topical Cream": 4263689}


def test_antidepressants_reachable_from_atc_n06a(con):
    n = one(con, """select count(*) from drug_exposure d join concept_ancestor a
                    on a.descendant_concept_id = d.drug_concept_id where a.ancestor_concept_id = 21604686""")
    n_names = one(con, """select count(*) from drug_exposure where drug_source_value similar to
                         '(sertraline|fluoxetine|citalopram|escitalopram|bupropion|venlafaxine|duloxetine|mirtazapine|trazodone|amitriptyline).*'""")
    assert n == n_names > 0


def test_all_thirteen_drugs_written(con):
    ingredients = {1510627, 42904205, 40244464, 1361580, 2000400001, 2000400002, 19010482, 1305058, 19014878,
                   19003999, 1506270, 1518254, 1550557}
    got = {r[0] for r in con.execute("""select distinct a.ancestor_concept_id from drug_exposure d
            join concept_ancestor a on a.descendant_concept_id = d.drug_concept_id
            join concept c on c.concept_id = a.ancestor_concept_id where c.concept_class_id = 'Ingredient'""").fetchall()}
    assert ingredients | {1551099} <= got  # prednisone too: 14 ingredients (ruxolitinib oral and topical)


def test_labs_have_units_and_salt_is_bounded(con):
    assert one(con, """select count(*) from measurement where measurement_concept_id in
                       (40764999, 3004327, 3013650, 3000963, 3024929, 3006923, 3009966)
                       and (unit_concept_id = 0 or unit_source_value is null)""") == 0
    assert one(con, """select count(*) from measurement where measurement_concept_id between 2000100001 and 2000100005
                       and (value_as_number < 0 or value_as_number > 100)""") == 0
    assert one(con, """select count(*) from measurement where measurement_concept_id in (2000100006, 2000100007)
                       and value_as_number not in (0, 1, 2, 3)""") == 0


def test_cdm_index_dates_and_outcomes_agree_with_the_world(cdm, con):
    """What a study derives from the CDM (first systemic prescription, prior and first outcome codes)
    equals the world's own person-level truth."""
    import numpy as np

    world = cdm[0]
    from follicle.synth._util import EPOCH

    first_rx = con.execute("""select person_id, min(drug_exposure_start_date) from drug_exposure d
        join concept_ancestor a on a.descendant_concept_id = d.drug_concept_id
        where a.ancestor_concept_id in (1510627, 42904205, 40244464, 1361580, 2000400001, 2000400002, 19010482,
              1305058, 19014878, 19003999, 1506270, 1518254, 1550557, 1551099)
          and d.route_concept_id = 4132161 group by 1""").fetchall()
    index = np.full(world.n, -1)
    for pid, d in first_rx:
        index[pid - 1] = (d - EPOCH).days
    assert np.array_equal(index, world._t["index_day"])

    first_anx = con.execute("""select person_id, min(condition_start_date) from condition_occurrence
        where condition_source_value like 'F41%' or condition_source_value like 'F40%' group by 1""").fetchall()
    anx = np.full(world.n, -1)
    for pid, d in first_anx:
        anx[pid - 1] = (d - EPOCH).days
    treated = world._t["treated"]
    idx = world._t["index_day"]
    prior_cdm = (anx >= 0) & (anx < idx)
    assert np.array_equal(prior_cdm[treated], world.history_before("anxiety", idx)[treated])
    after = treated & ~prior_cdm & (anx >= idx)
    assert np.array_equal(anx[after], world.outcome_day("anxiety")[after])
    assert after.sum() > 50
