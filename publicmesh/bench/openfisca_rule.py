"""The emergency benefit (緊急支援給付金) as an OpenFisca tax-benefit system, to time and cross-check our engine.

The rule is the one in services/definitions/emergency-benefit.yaml: the household is paid, through its head,
100,000 yen per resident member when the head is a resident and the members' total income is under 2,000,000
yen. The two figures come in as arguments (the caller reads them from the definition) and reach the formulas
as OpenFisca parameters. The population goes in as arrays, never as one dict entry per person.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from openfisca_core.entities import build_entity
from openfisca_core.parameters import ParameterNode
from openfisca_core.periods import MONTH
from openfisca_core.simulations import SimulationBuilder
from openfisca_core.taxbenefitsystems import TaxBenefitSystem
from openfisca_core.variables import Variable

HEADS = ("head", "single")  # household.relation values of the head (世帯主), as in services.rules.compiled
INT32 = np.iinfo(np.int32)  # OpenFisca stores `int` variables as int32

Person = build_entity("person", "persons", "A person in the resident registry", is_person=True)
Household = build_entity(
    "household",
    "households",
    "A household (世帯) of the resident registry",
    roles=[{"key": "head", "max": 1}, {"key": "member", "plural": "members"}],
)


class income(Variable):
    value_type = int
    entity = Person
    definition_period = MONTH
    label = "Income of the local tax assessment (合計所得金額), yen; 0 when unassessed"


class resident(Variable):
    value_type = bool
    entity = Person
    definition_period = MONTH
    label = 'Whether the registry status is "resident"'


class household_income(Variable):
    value_type = int
    entity = Household
    definition_period = MONTH
    label = "Total income of the household's members, yen"

    def formula(household, period):
        # The sum comes back as float64, exact here; saturating at the int32 limits keeps it from wrapping
        # and keeps every comparison with a threshold inside those limits exact.
        return np.clip(household.sum(household.members("income", period)), INT32.min, INT32.max)


class residents(Variable):
    value_type = int
    entity = Household
    definition_period = MONTH
    label = "Number of the household's members who are residents"

    def formula(household, period):
        return household.sum(household.members("resident", period))


class emergency_benefit(Variable):
    value_type = int
    entity = Household
    definition_period = MONTH
    label = "Emergency benefit paid to the household's head, yen"

    def formula(household, period, parameters):
        p = parameters(period).emergency_benefit
        head_is_resident = household.value_from_person(household.members("resident", period), role=Household.HEAD)
        eligible = head_is_resident & (household("household_income", period) < p.income_threshold)
        return np.where(eligible, p.amount_per_resident * household("residents", period), 0)


def tax_benefit_system(*, threshold_yen: int, per_member_yen: int) -> TaxBenefitSystem:
    """The entities, the five variables, and the two parameters in force from 2020 on."""
    for name, value in (("threshold_yen", threshold_yen), ("per_member_yen", per_member_yen)):
        if not 0 <= value <= INT32.max:
            raise ValueError(f"{name}={value} does not fit OpenFisca's int32 variables")
    system = TaxBenefitSystem([Person, Household])
    system.add_variables(income, resident, household_income, residents, emergency_benefit)
    system.parameters = ParameterNode(
        "",
        data={
            "emergency_benefit": {
                "income_threshold": {"values": {"2020-01-01": {"value": threshold_yen}}},
                "amount_per_resident": {"values": {"2020-01-01": {"value": per_member_yen}}},
            }
        },
    )
    return system


def openfisca_emergency_benefit(
    persons: pl.DataFrame, *, threshold_yen: int, per_member_yen: int, as_of: str = "2026-12"
) -> pl.DataFrame:
    """One row per household of `persons` (household, subject, person.status, tax.income, optionally
    household.relation): its key and the amount in yen (Int64, 0 when not eligible), in no particular order."""
    missing = [c for c in ("household", "subject", "person.status", "tax.income") if c not in persons.columns]
    if missing:
        raise ValueError(f"persons needs the columns {missing}")
    if persons["household"].null_count() or persons["subject"].null_count():
        raise ValueError("every person needs a household and a subject")
    if persons.height == 0:  # OpenFisca cannot build a simulation without persons
        return pl.DataFrame(schema={"household": persons.schema["household"], "amount": pl.Int64})
    income_yen = persons["tax.income"].fill_null(0)
    if income_yen.min() < INT32.min or income_yen.max() > INT32.max:
        raise ValueError("an income does not fit OpenFisca's int32 variables")

    # The head is picked as our engine picks it: the row named head (or single) with the smallest subject,
    # else, when the data names none, the member with the smallest subject. Hashing, not sorting, numbers
    # the households: sorting a million string keys costs about as much as the OpenFisca calculation itself.
    named = (
        pl.col("household.relation").is_in(list(HEADS)).fill_null(False)
        if "household.relation" in persons.columns
        else pl.lit(False)
    )
    households = (
        persons.lazy()
        .group_by("household")
        .agg(pl.coalesce(pl.col("subject").filter(named).min(), pl.col("subject").min()).alias("head"))
        .with_row_index("index")
        .collect()
    )
    members = (
        persons.lazy()
        .join(households.lazy(), on="household", how="left", maintain_order="left")
        .select(
            pl.col("index").cast(pl.Int64),
            (pl.col("subject") != pl.col("head")).cast(pl.Int8).alias("role"),  # 0 head, 1 member: flattened_roles
            (pl.col("person.status") == "resident").fill_null(False).alias("resident"),
        )
        .collect()
    )

    system = tax_benefit_system(threshold_yen=threshold_yen, per_member_yen=per_member_yen)
    builder = SimulationBuilder()
    builder.create_entities(system)
    # Positions serve as ids: the builder turns ids into a list first, and a range is the cheapest to list.
    builder.declare_person_entity("person", range(persons.height))
    household_population = builder.declare_entity("household", range(households.height))
    builder.join_with_persons(household_population, members["index"].to_numpy(), members["role"].to_numpy())
    simulation = builder.build(system)
    simulation.set_input("income", as_of, income_yen.to_numpy().astype(np.int32))
    simulation.set_input("resident", as_of, members["resident"].to_numpy())
    amount = simulation.calculate("emergency_benefit", as_of)
    return households.select("household", amount=pl.Series(amount, dtype=pl.Int64))
