"""Request field types of the tenant API, built on the pure rules in ``rules.py``.

Amounts arrive as decimal strings or JSON numbers (parsed as Decimal, never float) and become
integer paise; identifiers come back canonical. A broken rule is a 400 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, PlainValidator, StringConstraints, WithJsonSchema

from api.accounting import rules

DECIMAL_SCHEMA = {"anyOf": [{"type": "string", "pattern": r"^[+-]?[0-9]+(\.[0-9]+)?$"},
                            {"type": "number"}]}


def _client_error(rule):
    """Run ``rule``; a value of the wrong JSON type (null, true, a list) is the client's
    mistake, a 400 naming the field, not our bug: TypeError becomes ValueError."""
    def check(value: Any) -> int:
        try:
            return rule(value)
        except TypeError as exc:
            raise ValueError(str(exc)) from None
    return check


def _positive_paise(value: Any) -> int:
    paise = rules.to_paise(value)
    if paise <= 0:
        raise ValueError("must be more than zero")
    return paise


def _non_negative_paise(value: Any) -> int:
    paise = rules.to_paise(value)
    if paise < 0:
        raise ValueError("must not be negative")
    return paise


def _decimal_field(rule) -> Any:
    """An int field parsed by ``rule`` from a decimal string or number, documented as such."""
    return Annotated[int, PlainValidator(_client_error(rule)), WithJsonSchema(DECIMAL_SCHEMA)]


Paise = _decimal_field(_non_negative_paise)
PositivePaise = _decimal_field(_positive_paise)
BasisPoints = _decimal_field(rules.to_basis_points)
def _positive_milli(value: Any) -> int:
    milli = rules.to_milli(value)
    if milli <= 0:
        raise ValueError("must be more than zero")
    return milli


PositiveMilli = _decimal_field(_positive_milli)
GSTIN = Annotated[str, StringConstraints(max_length=15), AfterValidator(rules.validate_gstin)]
PAN = Annotated[str, StringConstraints(max_length=10), AfterValidator(rules.validate_pan)]
StateCode = Annotated[str, StringConstraints(max_length=2),
                      AfterValidator(rules.validate_state_code)]
HSNSAC = Annotated[str, StringConstraints(max_length=8), AfterValidator(rules.validate_hsn_sac)]
