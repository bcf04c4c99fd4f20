"""Vectorised employment, income, local-tax base, pensions and health insurance from age and sex."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from publicmesh.population.households import CHILD, SPOUSE

EMPLOYMENTS = ("employee", "employee_uninsured", "self_employed", "unemployed", "student", "retired", "child")
EMPLOYEE, UNINSURED, SELF_EMPLOYED, UNEMPLOYED, STUDENT, RETIRED, INFANT = range(7)
PENSION_KINDS = ("none", "national", "employees")
NO_PENSION, NATIONAL, EMPLOYEES = range(3)
HEALTH_INSURANCES = ("kyokai", "kokuho", "koki")
KYOKAI, KOKUHO, KOKI = range(3)

# Age bands (lower bounds after 0) and, per band and sex (male, female), P(employment category).
AGE_BANDS = np.array([6, 18, 23, 65, 75])
EMPLOYMENT_SHARES = np.array(
    [
        [[0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1]],
        [[0, 0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0, 0]],
        [[0.25, 0.15, 0, 0.05, 0.55, 0, 0], [0.22, 0.18, 0, 0.05, 0.55, 0, 0]],
        [[0.72, 0.06, 0.12, 0.10, 0, 0, 0], [0.50, 0.25, 0.06, 0.19, 0, 0, 0]],
        [[0.20, 0.15, 0.15, 0, 0, 0.50, 0], [0.10, 0.15, 0.08, 0, 0, 0.67, 0]],
        [[0, 0.05, 0.08, 0, 0, 0.87, 0], [0, 0.03, 0.04, 0, 0, 0.93, 0]],
    ]
)
# Yen a year at the age plateau: averaged over ages, sexes and the spread, the mean is ≈ 4.5 million.
EMPLOYEE_MEDIAN = 4_650_000
FEMALE_PAY = 0.72
NATIONAL_PENSION_FULL = 69_308  # 2025 monthly full 老齢基礎年金
DEPENDENT_INCOME_LIMIT = 1_300_000  # 被扶養者の収入要件
BASIC_DEDUCTION = 430_000  # 住民税の基礎控除
PENSION_DEDUCTION = 1_100_000  # 公的年金等控除, 65 and over, pensions up to 3.3 million


@dataclass
class Economy:
    """Per-person economic attributes, all arrays."""

    employment: np.ndarray  # int8 into EMPLOYMENTS
    income: np.ndarray  # int64 yen a year
    taxable_income: np.ndarray
    pension_kind: np.ndarray  # int8 into PENSION_KINDS
    pension_monthly: np.ndarray
    health_insurance: np.ndarray  # int8 into HEALTH_INSURANCES
    insurance_dependent: np.ndarray  # bool
    has_employer: np.ndarray  # bool


def _lognormal(rng: np.random.Generator, median: np.ndarray | float, sigma: float, n: int) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(n))


def salary_deduction(salary: np.ndarray) -> np.ndarray:
    """給与所得控除 (2025 revision), never more than the salary itself."""
    deduction = np.select(
        [salary <= 1_900_000, salary <= 3_600_000, salary <= 6_600_000, salary <= 8_500_000],
        [650_000, salary * 0.3 + 80_000, salary * 0.2 + 440_000, salary * 0.1 + 1_100_000],
        1_950_000,
    )
    return np.minimum(deduction, salary)


def simulate(
    rng: np.random.Generator, age: np.ndarray, sex: np.ndarray, relation: np.ndarray, head: np.ndarray
) -> Economy:
    """Draw the economy of one block from whole-year ages; `head` maps each person to their head's row."""
    n = len(age)
    male = sex == 1
    band = np.searchsorted(AGE_BANDS, age, side="right")
    cumulative = np.cumsum(EMPLOYMENT_SHARES, axis=2)[band, np.where(male, 0, 1)]
    u = rng.random(n)
    employment = np.minimum((u[:, None] >= cumulative).sum(axis=1), len(EMPLOYMENTS) - 1).astype(np.int8)

    # Pay rises with age to a plateau at 50 and drops on re-employment after 65.
    age_factor = np.where(age >= 65, 0.7, np.clip(0.55 + 0.025 * (age - 22), 0.55, 1.25))
    pay = _lognormal(rng, EMPLOYEE_MEDIAN * age_factor * np.where(male, 1.0, FEMALE_PAY), 0.45, n)
    part_time = np.clip(_lognormal(rng, 1_000_000, 0.35, n), 200_000, 2_400_000)
    business = _lognormal(rng, 3_000_000, 0.9, n)
    salary = np.select([employment == EMPLOYEE, employment == UNINSURED], [pay, part_time], 0.0)
    business = np.where(employment == SELF_EMPLOYED, business, 0.0)
    salary, business = (np.floor(a / 1000).astype(np.int64) * 1000 for a in (salary, business))

    # Pensions: the benefit scheme from 65; below 65 the scheme the person pays into (none under 20).
    senior = age >= 65
    u = rng.random(n)
    senior_kind = np.where(u < 0.02, NO_PENSION, np.where(u < 0.02 + np.where(male, 0.68, 0.48), EMPLOYEES, NATIONAL))
    working_kind = np.where(age < 20, NO_PENSION, np.where(employment == EMPLOYEE, EMPLOYEES, NATIONAL))
    pension_kind = np.where(senior, senior_kind, working_kind).astype(np.int8)
    national = np.clip(rng.normal(57_000, 7_000, n), 25_000, NATIONAL_PENSION_FULL)
    employees = np.clip(rng.normal(np.where(male, 175_000, 115_000), 30_000), 80_000, 300_000)
    monthly = np.select([pension_kind == NATIONAL, pension_kind == EMPLOYEES], [national, employees], 0.0)
    pension_monthly = np.where(senior, np.round(monthly, -2), 0).astype(np.int64)
    pension = pension_monthly * 12
    income = salary + business + pension

    # 住民税 base: income less the usual deductions, social insurance estimated as a flat share.
    insured = employment == EMPLOYEE
    deductions = (
        salary_deduction(salary)
        + np.where(senior, np.minimum(pension, PENSION_DEDUCTION), 0)
        + np.where(insured, 0.15 * salary, 0.10 * business)
        + BASIC_DEDUCTION
    )
    taxable = (np.floor(np.maximum(income - deductions, 0) / 1000) * 1000).astype(np.int64)

    # Spouses and children of an insured head join the head's 協会けんぽ while their income is low.
    dependent = (
        ((relation == SPOUSE) | (relation == CHILD))
        & (employment[head] == EMPLOYEE)
        & ~insured
        & (income < DEPENDENT_INCOME_LIMIT)
        & (age < 75)
    )
    health = np.where(age >= 75, KOKI, np.where(insured | dependent, KYOKAI, KOKUHO)).astype(np.int8)
    return Economy(
        employment=employment,
        income=income,
        taxable_income=taxable,
        pension_kind=pension_kind,
        pension_monthly=pension_monthly,
        health_insurance=health,
        insurance_dependent=dependent,
        has_employer=(employment == EMPLOYEE) | (employment == UNINSURED),
    )
