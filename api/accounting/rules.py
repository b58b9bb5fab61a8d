"""The domain rules of tenant accounting: pure functions, no Flask and no database.

Money is integer paise (1 rupee = 100 paise), rates are basis points (1800 = 18%) and quantities
are thousandths (``*_milli``). Amounts arrive as ``Decimal`` (JSON numbers parsed with
``parse_float=Decimal``), ``int`` or plain decimal strings, and leave as strings with fixed places;
no float is ever involved. Identifiers (GSTIN, PAN, codes) come back in their canonical form.

A value a client sent wrong raises ``RuleError`` naming the field, for a 400 answer. A value of the
wrong Python type (a float, or a Decimal where paise are due) is a bug on our side: ``TypeError``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import MAXYEAR, date
from decimal import Decimal

MAX_RUPEES = 10**15
MAX_QUANTITY = 10**15
DEBIT, CREDIT = "Dr", "Cr"
ENTRY_TYPES = (DEBIT, CREDIT)
BASIS_POINTS_PER_UNIT = 10_000  # 10000 bp = 100%

# Plain decimal notation only: optional sign, ASCII digits, optional fraction ("-1250.50").
PLAIN_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
FINANCIAL_YEAR = re.compile(r"([0-9]{4})-([0-9]{2})")
FINANCIAL_YEAR_START_MONTH = 4

# The state codes a GSTIN may start with (GST portal's list; 25 and 28 remain on older GSTINs).
STATE_CODES = {
    "01": "Jammu and Kashmir", "02": "Himachal Pradesh", "03": "Punjab", "04": "Chandigarh",
    "05": "Uttarakhand", "06": "Haryana", "07": "Delhi", "08": "Rajasthan",
    "09": "Uttar Pradesh", "10": "Bihar", "11": "Sikkim", "12": "Arunachal Pradesh",
    "13": "Nagaland", "14": "Manipur", "15": "Mizoram", "16": "Tripura", "17": "Meghalaya",
    "18": "Assam", "19": "West Bengal", "20": "Jharkhand", "21": "Odisha", "22": "Chhattisgarh",
    "23": "Madhya Pradesh", "24": "Gujarat", "25": "Daman and Diu (before the 2020 merger)",
    "26": "Dadra and Nagar Haveli and Daman and Diu", "27": "Maharashtra",
    "28": "Andhra Pradesh (before the 2014 division)", "29": "Karnataka", "30": "Goa",
    "31": "Lakshadweep", "32": "Kerala", "33": "Tamil Nadu", "34": "Puducherry",
    "35": "Andaman and Nicobar Islands", "36": "Telangana", "37": "Andhra Pradesh",
    "38": "Ladakh", "97": "Other Territory", "99": "Centre Jurisdiction",
}

# The 4th character of a PAN says who holds it.
PAN_HOLDER_TYPES = {
    "P": "individual", "C": "company", "H": "Hindu undivided family", "F": "firm",
    "A": "association of persons", "T": "trust", "B": "body of individuals",
    "L": "local authority", "J": "artificial juridical person", "G": "government",
}
PAN = re.compile(r"[A-Z]{5}[0-9]{4}[A-Z]")

GSTIN_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALPHANUMERIC = re.compile(r"[0-9A-Z]+")
# Character 14 is 'Z' on almost every GSTIN, but the GST portal's patterns for PAN-based
# registrations also allow 1-9 and A-J ('C': e-commerce operators collecting TCS). We accept
# those rather than refuse a real GSTIN; the check digit still catches any single typo there.
GSTIN_CHARACTER_14 = "Z123456789ABCDEFGHIJ"

HSN_SAC = re.compile(r"[0-9]{4}(?:[0-9]{2}){0,2}")  # 4, 6 or 8 digits


class RuleError(ValueError):
    """A value that breaks a rule: ``field`` names the input, ``message`` says what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


# Numbers


def _require_int(value: object, name: str) -> None:
    """Refuse anything but a real int (not a bool, not a Decimal in rupees) where units are due."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int of units, not {type(value).__name__}")


def _decimal(value: Decimal | int | str, field: str) -> Decimal:
    """Read ``value`` exactly as a finite Decimal; floats are refused because they are inexact."""
    if isinstance(value, float):
        raise TypeError(f"{field}: floats are inexact; parse JSON numbers as Decimal")
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise TypeError(f"{field}: expected a Decimal, int or str, not {type(value).__name__}")
    if isinstance(value, str):
        if not PLAIN_DECIMAL.fullmatch(value):
            raise RuleError(field, "must be a plain decimal number, like 1250.50")
        return Decimal(value)
    number = Decimal(value)
    if not number.is_finite():
        raise RuleError(field, "must be a finite number")
    return number


def _exact_units(number: Decimal, places: int, field: str) -> int:
    """``number * 10**places`` as an int, refused when it is not whole; never rounds.

    Works on the digits, not with Decimal arithmetic (which rounds to 28 digits), and expects
    ``number`` to be range-checked already so the int stays small whatever the exponent.
    """
    sign, digits, exponent = number.as_tuple()
    significant = "".join(map(str, digits)).rstrip("0")
    if not significant:
        return 0
    exponent += len(digits) - len(significant)
    if exponent < -places:
        raise RuleError(field, f"must have at most {places} decimal places")
    units = int(significant) * 10 ** (exponent + places)
    return -units if sign else units


def _to_units(value: Decimal | int | str, places: int, low: int, high: int, field: str) -> int:
    """Parse ``value``, check ``low <= value <= high``, and return it in units of 10**-places."""
    number = _decimal(value, field)
    if not low <= number <= high:
        raise RuleError(field, f"must be between {low} and {high}")
    return _exact_units(number, places, field)


def _format_units(units: int, places: int) -> str:
    """Write ``units`` of 10**-places with exactly ``places`` decimals ("-0.05")."""
    _require_int(units, "units")
    whole, fraction = divmod(abs(units), 10**places)
    sign = "-" if units < 0 else ""
    return f"{sign}{whole}.{fraction:0{places}d}"


def to_paise(value: Decimal | int | str, field: str = "amount") -> int:
    """Rupees ("1250.5", 1250, Decimal("0.01")) as exact paise, within +/- 10**15 rupees.

    More than 2 decimal places is refused unless the extra ones are zeros ("1.500" is 150).
    """
    return _to_units(value, 2, -MAX_RUPEES, MAX_RUPEES, field)


def format_paise(paise: int) -> str:
    """Paise as rupees with two decimals, the API's money format: 125050 -> "1250.50"."""
    return _format_units(paise, 2)


def to_milli(value: Decimal | int | str, field: str = "quantity") -> int:
    """A quantity ("2.5", 3) in thousandths, exact to 3 decimal places, within +/- 10**15."""
    return _to_units(value, 3, -MAX_QUANTITY, MAX_QUANTITY, field)


def format_milli(milli: int) -> str:
    """Thousandths as a quantity with three decimals: 2500 -> "2.500"."""
    return _format_units(milli, 3)


def to_basis_points(value: Decimal | int | str, field: str = "rate") -> int:
    """A percentage from 0 to 100 ("18", "0.25", Decimal("2.5")) in basis points (1800, 25, 250)."""
    return _to_units(value, 2, 0, 100, field)


def format_basis_points(basis_points: int) -> str:
    """Basis points as a percentage with two decimals: 1800 -> "18.00"."""
    return _format_units(basis_points, 2)


def divide_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to the nearest int, halves up; both non-negative."""
    return (2 * numerator + denominator) // (2 * denominator)


# Dates


def financial_year(day: date) -> str:
    """The Indian financial year (1 April to 31 March) ``day`` falls in: 2026-11-25 -> "2026-27"."""
    start = day.year if day.month >= FINANCIAL_YEAR_START_MONTH else day.year - 1
    return f"{start:04d}-{(start + 1) % 100:02d}"


def financial_year_bounds(label: str, field: str = "financial_year") -> tuple[date, date]:
    """The first and last day of a financial year given as "2026-27"."""
    match = FINANCIAL_YEAR.fullmatch(label)
    if not match:
        raise RuleError(field, "must be a financial year like 2026-27")
    start, end = int(match[1]), match[2]
    if end != f"{(start + 1) % 100:02d}":
        raise RuleError(field, f"{start} must be followed by {(start + 1) % 100:02d}, not {end}")
    if not 1 <= start < MAXYEAR:
        raise RuleError(field, f"must start between 0001 and {MAXYEAR - 1}")
    return (date(start, FINANCIAL_YEAR_START_MONTH, 1),
            date(start + 1, FINANCIAL_YEAR_START_MONTH - 1, 31))


# Identifiers


def _canonical(text: str) -> str:
    """Identifiers are compared and stored in upper case, without surrounding spaces."""
    return text.strip().upper()


def validate_state_code(text: str, field: str = "state_code") -> str:
    """A GST state code, two digits from ``STATE_CODES`` ("27" is Maharashtra)."""
    code = _canonical(text)
    if code not in STATE_CODES:
        raise RuleError(field, "must be a GST state code: two digits, 01 to 38, 97 or 99")
    return code


def _pan_problem(pan: str) -> str | None:
    """What is wrong with an upper-case PAN, as a phrase to follow its name; None if valid."""
    if not PAN.fullmatch(pan):
        return "must be 5 letters, 4 digits and 1 letter, like AAAPA1234A"
    if pan[3] not in PAN_HOLDER_TYPES:
        return f"must have a holder type ({', '.join(PAN_HOLDER_TYPES)}) as its 4th character"
    return None


def validate_pan(text: str, field: str = "pan") -> str:
    """A PAN (AAAAA9999A, the 4th letter its holder type), in upper case."""
    pan = _canonical(text)
    problem = _pan_problem(pan)
    if problem:
        raise RuleError(field, problem)
    return pan


def gstin_check_digit(first14: str) -> str:
    """The GSTIN's 15th character: GSTN's Luhn mod 36 over the first 14, factors 1, 2, 1, ..."""
    body = _canonical(first14)
    if len(body) != 14 or not ALPHANUMERIC.fullmatch(body):
        raise RuleError("gstin", "the first 14 characters must be letters and digits")
    radix = len(GSTIN_ALPHABET)
    total = 0
    for position, char in enumerate(body):
        product = GSTIN_ALPHABET.index(char) * (position % 2 + 1)
        total += sum(divmod(product, radix))
    return GSTIN_ALPHABET[(radix - total % radix) % radix]


def validate_gstin(text: str, field: str = "gstin") -> str:
    """A PAN-based GSTIN, in upper case; the error says which part is wrong.

    Layout: state code (1-2), the holder's PAN (3-12), registration number under that PAN in
    the state (13: 1-9 then A-Z), 'Z' (14; see ``GSTIN_CHARACTER_14``), check digit (15).
    UIN, OIDAR, NRI and TDS registrations, which carry no PAN, are not accepted here.
    """
    gstin = _canonical(text)
    if len(gstin) != 15 or not ALPHANUMERIC.fullmatch(gstin):
        raise RuleError(field, "must be 15 letters and digits")
    if gstin[:2] not in STATE_CODES:
        raise RuleError(field, "characters 1-2 must be a GST state code (01 to 38, 97 or 99)")
    problem = _pan_problem(gstin[2:12])
    if problem:
        raise RuleError(field, f"characters 3-12 are the holder's PAN, which {problem}")
    if gstin[12] == "0":
        raise RuleError(field, "character 13, the registration number, must be 1-9 or A-Z")
    if gstin[13] not in GSTIN_CHARACTER_14:
        raise RuleError(field, "character 14 must be Z (or 1-9, A-J for special registrations)")
    if gstin[14] != gstin_check_digit(gstin[:14]):
        raise RuleError(field, "the check digit (character 15) does not match: a character is "
                               "mistyped")
    return gstin


def validate_hsn_sac(text: str, field: str = "hsn_sac") -> str:
    """An HSN (goods) or SAC (services) code: 4, 6 or 8 digits."""
    code = text.strip()
    if not HSN_SAC.fullmatch(code):
        raise RuleError(field, "must be 4, 6 or 8 digits")
    return code


# Double entry, GST and balances


def check_balanced(entries: Iterable[tuple[str, int]], field: str = "entries") -> int:
    """Check a voucher's ``(type, paise)`` entries obey double entry; return the voucher total.

    At least two entries, every amount above zero, at least one Dr and one Cr, and total debits
    equal to total credits, exactly.
    """
    entries = list(entries)
    if len(entries) < 2:
        raise RuleError(field, "a voucher needs at least two entries")
    totals = dict.fromkeys(ENTRY_TYPES, 0)
    for number, (entry_type, paise) in enumerate(entries, start=1):
        _require_int(paise, f"entry {number} amount")
        if entry_type not in ENTRY_TYPES:
            raise RuleError(field, f"entry {number}: the type must be Dr or Cr")
        if paise <= 0:
            raise RuleError(field, f"entry {number}: the amount must be more than zero")
        totals[entry_type] += paise
    debits, credits = totals[DEBIT], totals[CREDIT]
    if not debits or not credits:
        raise RuleError(field, "a voucher needs at least one Dr and one Cr entry")
    if debits != credits:
        raise RuleError(field, f"debits ({format_paise(debits)}) must equal credits "
                               f"({format_paise(credits)})")
    return debits


def gst_split(taxable_paise: int, rate_bp: int, intra_state: bool) -> tuple[int, int, int]:
    """GST on one line as ``(cgst, sgst, igst)`` paise.

    Inter-state: IGST at the full rate. Intra-state: CGST and SGST at half the rate each, each
    rounded on its own, so they are always equal, as printed on an invoice. Rounding is to the
    paisa, halves up. The intra-state total may differ from the IGST by one paisa.
    """
    _require_int(taxable_paise, "taxable_paise")
    _require_int(rate_bp, "rate_bp")
    if taxable_paise < 0:
        raise RuleError("taxable_paise", "must not be negative")
    if not 0 <= rate_bp <= BASIS_POINTS_PER_UNIT:
        raise RuleError("rate_bp", "must be between 0 and 100%")
    if intra_state:
        half = divide_half_up(taxable_paise * rate_bp, 2 * BASIS_POINTS_PER_UNIT)
        return half, half, 0
    return 0, 0, divide_half_up(taxable_paise * rate_bp, BASIS_POINTS_PER_UNIT)


def closing_balance(opening_paise: int, opening_type: str, debits: int,
                    credits: int) -> tuple[int, str]:
    """A ledger's closing balance from its opening balance and its debit and credit totals.

    Returns ``(paise, "Dr" | "Cr")``; a zero balance is ``(0, "Dr")``, the ledgers' default side.
    """
    for name, value in (("opening_balance", opening_paise), ("debits", debits),
                        ("credits", credits)):
        _require_int(value, name)
        if value < 0:
            raise RuleError(name, "must not be negative")
    if opening_type not in ENTRY_TYPES:
        raise RuleError("opening_balance_type", "must be Dr or Cr")
    signed = (opening_paise if opening_type == DEBIT else -opening_paise) + debits - credits
    return (signed, DEBIT) if signed >= 0 else (-signed, CREDIT)
