"""Every agency system this distribution ships, in start-up order."""

from publicmesh.agencies import (
    child_allowance,
    employment_insurance,
    health_insurance,
    local_tax,
    national_tax,
    pension,
    resident_registry,
)
from publicmesh.provider.definition import AgencyDefinition
from publicmesh.services.agency import AGENCY as SERVICES

AGENCIES: dict[str, AgencyDefinition] = {
    a.system: a
    for a in (
        resident_registry.AGENCY,
        local_tax.AGENCY,
        child_allowance.AGENCY,
        national_tax.AGENCY,
        pension.AGENCY,
        employment_insurance.AGENCY,
        health_insurance.AGENCY,
        SERVICES,
    )
}
