from publicmesh.hub.rules import RuleBook
from publicmesh.protocol.members import MemberId

M = MemberId.parse


def test_a_city_system_reads_only_its_own_city():
    rules = RuleBook.load()
    kitami = M("MUNI/012084/child-allowance")
    assert rules.authorize(
        kitami, "child-allowance-eligibility", M("MUNI/012084/resident-registry"), "household", ["members"]
    )
    assert (
        rules.authorize(
            kitami, "child-allowance-eligibility", M("MUNI/131016/resident-registry"), "household", ["members"]
        )
        is None
    )


def test_attributes_beyond_the_rule_and_other_affairs_are_refused():
    rules = RuleBook.load()
    nta = M("GOV/nta/national-tax")
    registry = M("MUNI/012084/resident-registry")
    assert rules.authorize(nta, "taxpayer-address", registry, "address", ["address"]).id == "national-tax-address"
    assert rules.authorize(nta, "taxpayer-address", registry, "household", ["members"]) is None
    assert rules.authorize(nta, "pension-payment", registry, "address", ["address"]) is None
    assert rules.authorize(nta, "taxpayer-address", registry, "person", ["family_name", "sex"]) is None


def test_protected_addresses_are_withheld_unless_a_rule_says_so():
    rules = RuleBook.load()
    allowed = [r for r in rules.rules if r.protected_addresses == "allow"]
    # only the city's own support affair, and the person reading their own data through the portal
    assert {r.affair for r in allowed} == {"protected-person-support", "self-information"}
    assert all(r.consumer == "GOV/digital/portal" for r in allowed if r.affair == "self-information")
    assert all(r.protected_addresses == "withhold" for r in rules.rules if r not in allowed)


def test_events_follow_the_municipality():
    rules = RuleBook.load()
    income = next(r for r in rules.event_rules if r.id == "income-to-local-tax")
    assert (
        str(income.subscriber_for(M("GOV/nta/national-tax"), {"municipality_code": "472018"}))
        == "MUNI/472018/local-tax"
    )
    birth = next(r for r in rules.event_rules if r.id == "birth-to-child-allowance")
    assert str(birth.subscriber_for(M("MUNI/012084/resident-registry"), {})) == "MUNI/012084/child-allowance"
    assert birth.subscriber_for(M("GOV/nta/national-tax"), {}) is None
