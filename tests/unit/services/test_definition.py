import datetime as dt
import json

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError
from typer.testing import CliRunner

from publicmesh.cli import app
from publicmesh.services.definition import (
    DefinitionError,
    ServiceDefinition,
    content_hash,
    definitions_dir,
    load_definition,
    load_packaged,
    schema,
)
from publicmesh.services.rules import RuleError, compile_rules

PACKAGED = sorted(p.stem for p in definitions_dir().glob("*.yaml"))
EMERGENCY = (definitions_dir() / "emergency-benefit.yaml").read_text(encoding="utf-8")
CHILD = (definitions_dir() / "child-allowance.yaml").read_text(encoding="utf-8")
ELIGIBLE = '    person.status == "resident" and household.sum(tax.income) < 2_000_000\n'
AMOUNT = '  amount: 100_000 * household.count(where=person.status == "resident")'


def edited(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def problems_of(text: str, **options):
    with pytest.raises(DefinitionError) as caught:
        load_definition(text, name="svc.yaml", **options)
    return caught.value.problems


def only_problem(text: str, **options):
    problems = problems_of(text, **options)
    assert len(problems) == 1, problems
    return problems[0]


def test_the_four_packaged_definitions_load():
    assert PACKAGED == ["child-allowance", "childbirth-grant", "emergency-benefit", "newborn-health-insurance"]
    for service_id in PACKAGED:
        definition = load_packaged(service_id)
        assert definition.id == service_id and definition.version >= 1
        assert isinstance(definition.as_of, dt.date)
        assert all(isinstance(f.label.ja, str) for f in definition.form)


def test_models_carry_the_fields_typed():
    definition = load_packaged("emergency-benefit")
    assert definition.unit == "household" and definition.triggers == ("publish",)
    assert definition.data["tax"].attributes == ("fiscal_year", "income", "tax_exempt")
    assert definition.workflow.review_over == 500_000 and definition.pays
    assert [p for p, _ in definition.expressions()] == [
        ("rules", "eligible"),
        ("rules", "amount"),
        ("form", 0, "source"),
        ("form", 1, "source"),
        ("form", 2, "source"),
        ("form", 3, "source"),
    ]
    child = load_packaged("child-allowance")
    assert list(child.rules.let) == ["counted", "child", "order", "monthly"]  # order kept: each uses the ones before
    assert child.tables["monthly_by_order_and_age"].rows[0] == (False, True, 15_000)
    newborn = load_packaged("newborn-health-insurance")
    assert newborn.rules.amount == 0 and not newborn.pays and newborn.notices.no_account is None
    with pytest.raises(ValidationError):
        definition.version = 2


def test_the_models_refuse_floats_for_money_even_without_the_schema():
    doc = load_packaged("emergency-benefit").model_dump(by_alias=True)
    doc["rules"]["amount"] = 100000.0
    with pytest.raises(ValidationError):
        ServiceDefinition.model_validate(doc)


def test_unknown_packaged_service():
    with pytest.raises(FileNotFoundError, match="emergency-benefit"):
        load_packaged("no-such-service")


def test_content_hash_ignores_layout_but_not_content():
    original = content_hash(load_definition(EMERGENCY))
    relaid = "\n".join(line.split("  #")[0] for line in EMERGENCY.splitlines() if not line.startswith("#"))
    relaid = edited(relaid, "review_over: 500_000", "review_over: 500000")
    assert content_hash(load_definition(relaid)) == original
    assert content_hash(load_definition(edited(EMERGENCY, "review_over: 500_000", "review_over: 400_000"))) != original
    assert len(original) == 64


def test_missing_eligible_points_at_rules():
    text = edited(EMERGENCY, "  eligible: >-\n" + ELIGIBLE, "")
    problem = only_problem(text)
    assert (problem.line, problem.column) == (line_of(text, "rules:"), 1)
    assert problem.path == "rules.eligible"
    assert "missing required key 'eligible'" in problem.message


def test_a_typo_in_a_key_is_an_error_with_a_suggestion():
    text = edited(EMERGENCY, "  eligible: >-", "  eligble: >-")
    problems = problems_of(text)
    typo = next(p for p in problems if p.path == "rules.eligble")
    assert (typo.line, typo.column) == (line_of(text, "eligble:"), 3)
    assert "unknown key 'eligble'" in typo.message and "did you mean 'eligible'" in typo.message
    assert [p.line for p in problems] == sorted(p.line for p in problems)  # with the missing eligible, by line


def test_unknown_top_level_key():
    text = EMERGENCY + "eligble: true\n"
    problem = only_problem(text)
    assert (problem.line, problem.path) == (line_of(text, "eligble:"), "eligble")
    assert "unknown key" in problem.message


def test_unit_family_lists_the_allowed_units():
    text = edited(EMERGENCY, "unit: household ", "unit: family    ")
    problem = only_problem(text)
    assert (problem.line, problem.column, problem.path) == (line_of(text, "unit: family"), 7, "unit")
    assert "person, household" in problem.message and "'family'" in problem.message


@pytest.mark.parametrize("amount", ["1.5", "100000.0"])
def test_a_float_amount_is_an_error(amount):
    text = edited(EMERGENCY, AMOUNT, f"  amount: {amount}")
    problem = only_problem(text)
    assert (problem.line, problem.column, problem.path) == (line_of(text, "amount: " + amount), 11, "rules.amount")
    assert "integer yen" in problem.message and amount in problem.message


def test_a_float_review_threshold_is_an_error():
    text = edited(EMERGENCY, "review_over: 500_000", "review_over: 1000.5")
    problem = only_problem(text)
    assert (problem.line, problem.path) == (line_of(text, "review_over:"), "workflow.review_over")
    assert "must be an integer" in problem.message and "1000.5" in problem.message


def test_an_unknown_provider_dataset():
    text = edited(EMERGENCY, "dataset: assessment", "dataset: assesment")
    problem = only_problem(text)
    assert (problem.line, problem.path) == (line_of(text, "dataset: assesment"), "data.tax.dataset")
    assert problem.message == "local-tax has no dataset 'assesment'; its datasets: assessment"


def test_an_unknown_provider_system_and_a_national_system_written_as_municipal():
    text = edited(EMERGENCY, "MUNI/{code}/local-tax", "MUNI/{code}/locl-tax")
    assert "no agency system 'locl-tax'" in only_problem(text).message
    text = edited(EMERGENCY, "MUNI/{code}/local-tax", "MUNI/{code}/national-tax")
    assert "write GOV/nta/national-tax" in only_problem(text).message


def test_an_unknown_attribute_of_a_known_dataset():
    text = edited(EMERGENCY, "[fiscal_year, income, tax_exempt]", "[fiscal_year, income, salary]")
    problems = problems_of(text)  # the rules still read tax.income, which stays declared
    assert len(problems) == 1
    problem = problems[0]
    assert problem.path == "data.tax.attributes[2]"
    line = line_of(text, "salary]")
    assert (problem.line, problem.column) == (line, text.splitlines()[line - 1].index("salary") + 1)
    assert "local-tax/assessment has no attribute 'salary'" in problem.message and "taxable_income" in problem.message


def test_an_expression_reading_an_undeclared_attribute():
    text = edited(EMERGENCY, ELIGIBLE, ELIGIBLE.replace("tax.income", "tax.salary"))
    problem = only_problem(text)
    line = line_of(text, "tax.salary")
    assert (problem.line, problem.path) == (line, "rules.eligible")
    assert problem.column == text.splitlines()[line - 1].index("tax.salary") + 1  # inside a folded (>-) block
    assert "tax.salary is not declared" in problem.message and "fiscal_year, income, tax_exempt" in problem.message


def test_an_expression_reading_an_undeclared_source_on_a_plain_line_with_japanese():
    text = edited(EMERGENCY, AMOUNT, '  amount: where(person.status == "住民", pension.monthly_amount, 0)')
    problem = only_problem(text)
    line = text.splitlines()[problem.line - 1]
    assert (problem.line, problem.column) == (line_of(text, "pension."), line.index("pension.") + 1)
    assert "pension is not a data source" in problem.message


def test_household_functions_are_not_attribute_references():
    text = edited(EMERGENCY, AMOUNT, "  amount: household.total(tax.income)")
    assert "household.total() is not a function" in only_problem(text).message
    # household.count(...) is a function, household.relation an attribute of the household source
    load_definition(edited(EMERGENCY, AMOUNT, '  amount: 1000 * (household.relation == "head")'))
    text = edited(EMERGENCY, AMOUNT, "  amount: 1000 * household.size")
    assert "household.size is not declared" in only_problem(text).message


def test_an_expression_that_does_not_parse():
    text = edited(EMERGENCY, AMOUNT, '  amount: "100_000 * (household.count()"')
    problem = only_problem(text)
    line = text.splitlines()[problem.line - 1]
    assert (problem.line, problem.path) == (line_of(text, 'amount: "100_000'), "rules.amount")
    assert problem.column == line.index("(") + 1 and "not a valid expression" in problem.message


def test_an_expression_naming_an_unknown_table_or_giving_the_wrong_keys():
    text = edited(CHILD, 'table("monthly_by_order_and_age", order', 'table("monthly", order')
    problem = only_problem(text)
    assert (problem.line, problem.path) == (line_of(text, 'table("monthly"'), "rules.let.monthly")
    assert "no table 'monthly'" in problem.message
    text = edited(CHILD, ", age(person.birth_date) < 3), 0)", "), 0)")
    assert "has 2 key columns" in only_problem(text).message


def test_a_table_row_of_the_wrong_arity():
    text = edited(CHILD, "- [true, true, 30_000]", "- [true, 30_000]")
    problem = only_problem(text)
    assert problem.line == line_of(text, "- [true, 30_000]")
    assert problem.path == "tables.monthly_by_order_and_age.rows[2]"
    assert "2 key values (third_or_later, under_3) and a value: 3 items, not 2" in problem.message


def test_a_table_value_must_be_integer_yen():
    text = edited(CHILD, "- [true, true, 30_000]", "- [true, true, 30000.5]")
    problem = only_problem(text)
    assert problem.line == line_of(text, "30000.5") and "30000.5" in problem.message


def test_a_form_field_with_both_source_and_typed():
    text = edited(
        EMERGENCY,
        "    source: household.sum(tax.income)\n",
        "    source: household.sum(tax.income)\n    typed: true\n    type: text\n",
    )
    problem = only_problem(text)
    assert (problem.line, problem.path) == (line_of(text, "typed: true"), "form[2].typed")
    assert "exactly one of source" in problem.message


def test_a_typed_form_field_loads_and_needs_its_type():
    typed = (
        "  - name: phone\n    label: {ja: 電話番号, en: Phone}\n    typed: true\n    type: tel\n    required: true\n"
    )
    text = edited(EMERGENCY, "attachments: []\n", "").replace("\nworkflow:", "\n" + typed + "workflow:", 1)
    field = load_definition(text).form[-1]
    assert (field.typed, field.type, field.required, field.source) == (True, "tel", True, None)
    problem = only_problem(text.replace("    type: tel\n", ""))
    assert problem.path == "form[4].typed" and "also needs type" in problem.message


def test_a_yaml_syntax_error_reports_its_line():
    text = edited(EMERGENCY, "  en: Emergency benefit", "  en: [Emergency benefit")
    problem = only_problem(text)
    assert problem.line == line_of(text, "owner:") and problem.message.startswith("YAML syntax:")
    assert f"(while parsing a flow sequence on line {line_of(text, '[Emergency')})" in problem.message


def test_duplicate_keys_and_impossible_dates_are_errors():
    problem = only_problem(edited(EMERGENCY, "version: 1\n", "version: 1\nversion: 2\n"))
    assert (problem.line, problem.path) == (line_of(EMERGENCY, "version: 1") + 1, "version")
    assert "duplicate key 'version'" in problem.message
    problem = only_problem(edited(EMERGENCY, "as_of: 2026-12-01", "as_of: 2026-13-01"))
    assert problem.line == line_of(EMERGENCY, "as_of:") and "not a date" in problem.message


def test_a_paying_service_needs_the_no_account_notice_and_a_payer():
    text = edited(EMERGENCY, "  no_account:", "  no_account_:")
    problems = problems_of(text)
    assert any(p.path == "notices.no_account" and "payout.method is not none" in p.message for p in problems)
    text = edited(EMERGENCY, "  payer: municipality ", "  # nobody")
    assert only_problem(text).path == "payout.payer"


def test_notice_placeholders_are_checked():
    text = edited(EMERGENCY, 'en: "Reason: {reason}"', 'en: "Reason: {why}"')
    problem = only_problem(text)
    assert problem.path == "notices.rejected.body.en" and "unknown placeholder {why}" in problem.message


def test_expression_check_hook_errors_land_on_the_expression():
    def check(text):
        if "100_000" in text:
            raise RuleError("integer overflow, say", text, text.index("household"))

    problem = only_problem(EMERGENCY, expression_check=check)
    line = line_of(EMERGENCY, AMOUNT.strip())
    assert (problem.line, problem.path, problem.message) == (line, "rules.amount", "integer overflow, say")
    assert problem.column == EMERGENCY.splitlines()[line - 1].index("household") + 1


def test_rules_check_hook_with_the_rules_compiler():
    def check(doc):
        compile_rules(doc["rules"], doc.get("tables") or {}, doc["as_of"], data=doc["data"])

    assert load_definition(CHILD, rules_check=check).id == "child-allowance"
    text = edited(CHILD, "  amount: 2 * household.sum(monthly)", "  amount: 2 * household.sum(montly)")
    problem = only_problem(text, rules_check=check)
    line = text.splitlines()[problem.line - 1]
    assert (problem.line, problem.path) == (line_of(text, "montly"), "rules.amount")
    assert problem.column == line.index("montly") + 1 and "montly" in problem.message


def test_the_report_reads_file_line_column_path_message():
    text = edited(EMERGENCY, "unit: household ", "unit: family    ")
    text = edited(text, "review_over: 500_000", "review_over: -1")
    with pytest.raises(DefinitionError) as caught:
        load_definition(text, name="svc.yaml")
    lines = str(caught.value).splitlines()
    assert lines == [
        f"svc.yaml:{line_of(text, 'unit:')}:7: unit: must be one of person, household, not 'family'",
        f"svc.yaml:{line_of(text, 'review_over')}:16: workflow.review_over: must be at least 0, not -1",
    ]
    assert isinstance(caught.value, ValueError)


def test_the_published_schema_is_valid_and_matches_the_model():
    Draft202012Validator.check_schema(schema())
    fields = {f.alias or name for name, f in ServiceDefinition.model_fields.items()}
    assert set(schema()["properties"]) == fields


def test_cli_validate_and_schema(tmp_path):
    runner = CliRunner()
    files = [str(definitions_dir() / f"{s}.yaml") for s in PACKAGED]
    result = runner.invoke(app, ["services", "validate", *files])
    assert result.exit_code == 0, result.output
    assert "✓" in result.output
    assert "emergency-benefit v1 (緊急支援給付金（低所得世帯）)" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(edited(EMERGENCY, "unit: household ", "unit: family    "), encoding="utf-8")
    result = runner.invoke(app, ["services", "validate", files[0], str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:{line_of(EMERGENCY, 'unit:')}:7: unit: must be one of" in result.output
    assert "child-allowance v1" in result.output  # the good file is still reported
    assert runner.invoke(app, ["services", "validate", str(tmp_path / "missing.yaml")]).exit_code == 1
    result = runner.invoke(app, ["services", "schema"])
    assert result.exit_code == 0 and json.loads(result.output)["$id"] == schema()["$id"]
