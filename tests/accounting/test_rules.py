"""The accounting rules: exact money, financial years, Indian tax identifiers, double entry, GST."""

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.accounting.rules import (
    GSTIN_ALPHABET,
    GSTIN_CHARACTER_14,
    PAN_HOLDER_TYPES,
    STATE_CODES,
    RuleError,
    check_balanced,
    closing_balance,
    financial_year,
    financial_year_bounds,
    format_basis_points,
    format_milli,
    format_paise,
    gst_split,
    gstin_check_digit,
    to_basis_points,
    to_milli,
    to_paise,
    validate_gstin,
    validate_hsn_sac,
    validate_pan,
    validate_state_code,
)

FAST = settings(max_examples=60, deadline=None)
MAX_PAISE = 10**17
KNOWN_GSTIN = "27AAPFU0939F1ZV"  # widely published as a valid GSTIN


def with_check_digit(first14: str) -> str:
    return first14 + gstin_check_digit(first14)


# Money, quantities and rates


@pytest.mark.parametrize(("value", "paise"), [
    ("1250.5", 125050), ("1250.50", 125050), ("0.01", 1), ("-0.05", -5), ("+3", 300),
    ("0", 0), ("-0.00", 0), ("1250.500", 125050), (1250, 125000), (-7, -700),
    (Decimal("1250.5"), 125050), (Decimal("1.25E+3"), 125000), (Decimal("1.500"), 150),
    (Decimal("0E-999999999"), 0), ("1000000000000000", MAX_PAISE),
    ("-1000000000000000.00", -MAX_PAISE), ("999999999999999.99", MAX_PAISE - 1),
])
def test_to_paise_is_exact(value, paise):
    assert to_paise(value) == paise


@pytest.mark.parametrize("value", [
    "", " 1", "1.", ".5", "1,000", "1_000", "1e3", "0x10", "--1", "NaN", "Infinity", "١٢",
    Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-Infinity"),
])
def test_to_paise_refuses_what_is_not_a_plain_finite_number(value):
    with pytest.raises(RuleError) as caught:
        to_paise(value, field="price")
    assert caught.value.field == "price"


@pytest.mark.parametrize("value", ["1.005", "0.001", Decimal("1E-3"), Decimal("1.2345E+1"),
                                   "1.0000000000000000000000000000001"])
def test_to_paise_refuses_fractions_of_a_paisa(value):
    with pytest.raises(RuleError, match="at most 2 decimal places"):
        to_paise(value)


@pytest.mark.parametrize("value", ["1000000000000000.01", "-1000000000000000.01", 10**16,
                                   Decimal("1E+16"), Decimal("1E+999999999")])
def test_to_paise_refuses_amounts_beyond_10_to_the_15_rupees(value):
    with pytest.raises(RuleError, match="between"):
        to_paise(value)


def test_extreme_exponents_are_refused():
    """Refused from the exponent alone: expanding 1E-999999999 digit by digit would hang."""
    for value in (Decimal("1E-999999999"), Decimal("1E+999999999"), "0." + "0" * 100_000 + "1"):
        with pytest.raises(RuleError):
            to_paise(value)


@pytest.mark.parametrize("value", [12.5, 0.0, True, None, [1]])
def test_to_paise_refuses_floats_and_other_types_as_bugs(value):
    with pytest.raises(TypeError):
        to_paise(value)


def test_a_float_is_refused_because_it_is_inexact():
    with pytest.raises(TypeError, match="inexact"):
        to_paise(0.1)


@pytest.mark.parametrize(("paise", "text"), [
    (125050, "1250.50"), (-5, "-0.05"), (0, "0.00"), (7, "0.07"), (-100, "-1.00"),
    (MAX_PAISE, "1000000000000000.00"),
])
def test_format_paise(paise, text):
    assert format_paise(paise) == text


@pytest.mark.parametrize("value", [Decimal("12.50"), 12.5, True, "1250"])
def test_format_paise_takes_only_int_paise(value):
    with pytest.raises(TypeError):
        format_paise(value)


def test_quantities_have_three_places():
    assert [to_milli(v) for v in ("2.5", "0.001", 3, Decimal("1.25"))] == [2500, 1, 3000, 1250]
    assert to_milli("-1.5") == -1500
    assert format_milli(2500) == "2.500"
    with pytest.raises(RuleError, match="at most 3 decimal places") as caught:
        to_milli("1.0005")
    assert caught.value.field == "quantity"


@pytest.mark.parametrize(("value", "basis_points"), [
    ("18", 1800), ("0.25", 25), (18, 1800), (Decimal("2.5"), 250), ("0", 0), ("100", 10_000),
])
def test_to_basis_points(value, basis_points):
    assert to_basis_points(value) == basis_points


@pytest.mark.parametrize("value", ["-1", "100.01", "0.125", Decimal("1E+3")])
def test_to_basis_points_refuses_rates_outside_0_to_100_or_finer_than_a_basis_point(value):
    with pytest.raises(RuleError) as caught:
        to_basis_points(value)
    assert caught.value.field == "rate"


def test_format_basis_points():
    assert (format_basis_points(1800), format_basis_points(25)) == ("18.00", "0.25")
    with pytest.raises(TypeError, match="inexact"):
        to_basis_points(18.0)


money_strings = st.builds(
    lambda negative, rupees, paise: f"{'-' if negative else ''}{rupees}.{paise:02d}",
    st.booleans(), st.integers(0, 10**15 - 1), st.integers(0, 99),
).filter(lambda text: text != "-0.00")


@FAST
@given(money_strings)
def test_two_decimal_strings_round_trip_exactly(text):
    paise = to_paise(text)
    assert format_paise(paise) == text
    rupees, _, fraction = text.lstrip("-").partition(".")
    assert abs(paise) == int(rupees) * 100 + int(fraction)  # no float could hold 17 digits
    assert to_paise(Decimal(text)) == paise


@FAST
@given(st.integers(-MAX_PAISE, MAX_PAISE))
def test_every_amount_in_range_survives_format_and_parse(paise):
    assert to_paise(format_paise(paise)) == paise
    assert to_paise(Decimal(paise).scaleb(-2)) == paise


@FAST
@given(money_strings, st.integers(1, 9))
def test_a_third_decimal_place_is_always_refused(text, digit):
    with pytest.raises(RuleError, match="decimal places"):
        to_paise(f"{text}{digit}")


# Financial years


@pytest.mark.parametrize(("day", "label"), [
    (date(2026, 11, 25), "2026-27"), (date(2027, 3, 31), "2026-27"), (date(2027, 4, 1), "2027-28"),
    (date(2026, 4, 1), "2026-27"), (date(2100, 1, 1), "2099-00"),
])
def test_financial_year_runs_april_to_march(day, label):
    assert financial_year(day) == label


def test_financial_year_bounds():
    assert financial_year_bounds("2026-27") == (date(2026, 4, 1), date(2027, 3, 31))
    assert financial_year_bounds("2099-00") == (date(2099, 4, 1), date(2100, 3, 31))


@pytest.mark.parametrize(("label", "message"), [
    ("2026-28", "followed by 27"), ("2026/27", "like 2026-27"), ("26-27", "like 2026-27"),
    ("2026-2027", "like 2026-27"), ("0000-01", "must start between"),
    ("9999-00", "must start between"),
])
def test_financial_year_bounds_refuses_malformed_years(label, message):
    with pytest.raises(RuleError, match=message) as caught:
        financial_year_bounds(label)
    assert caught.value.field == "financial_year"


@FAST
@given(st.dates(min_value=date(1, 4, 1), max_value=date(9999, 3, 31)))
def test_every_day_lies_within_its_financial_year(day):
    first, last = financial_year_bounds(financial_year(day))
    assert first <= day <= last
    assert (first.month, first.day, last.year - first.year) == (4, 1, 1)


# Identifiers


def test_the_published_gstin_passes():
    assert gstin_check_digit("27AAPFU0939F1Z") == "V"
    assert validate_gstin(KNOWN_GSTIN) == KNOWN_GSTIN


def test_gstin_is_normalised_to_upper_case():
    assert validate_gstin(" 27aapfu0939f1zv ") == KNOWN_GSTIN


@pytest.mark.parametrize("first14", ["29ABCPE1234F1Z", "07AAACG1234H9C", "97AAAPL1234CAZ",
                                     "99AAAGG1234G1Z", "37ABCFA0001B2Z"])
def test_gstins_built_with_their_check_digit_pass(first14):
    assert validate_gstin(with_check_digit(first14)) == with_check_digit(first14)


@pytest.mark.parametrize(("gstin", "message"), [
    ("27AAPFU0939F1Z", "15 letters and digits"),
    ("27AAPFU0939F1Z-", "15 letters and digits"),
    (with_check_digit("00AAPFU0939F1Z"), "characters 1-2"),
    (with_check_digit("39AAPFU0939F1Z"), "characters 1-2"),
    (with_check_digit("27AAPF10939F1Z"), "characters 3-12 .* 5 letters, 4 digits"),
    (with_check_digit("27AAPXU0939F1Z"), "characters 3-12 .* holder type"),
    (with_check_digit("27AAPFU0939F0Z"), "character 13"),
    (with_check_digit("27AAPFU0939F1Y"), "character 14"),
    ("27AAPFU0939F1ZW", "check digit"),
])
def test_gstin_errors_say_which_part_is_wrong(gstin, message):
    with pytest.raises(RuleError, match=message) as caught:
        validate_gstin(gstin)
    assert caught.value.field == "gstin"


def test_gstin_check_digit_needs_14_letters_and_digits():
    with pytest.raises(RuleError, match="first 14"):
        gstin_check_digit("27AAPFU0939F1")


pans = st.builds(
    lambda head, holder, tail, digits, last: f"{head}{holder}{tail}{digits:04d}{last}",
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3),
    st.sampled_from(sorted(PAN_HOLDER_TYPES)),
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    st.integers(0, 9999),
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
)
gstins = st.builds(
    lambda state, pan, entity, character14: with_check_digit(state + pan + entity + character14),
    st.sampled_from(sorted(STATE_CODES)), pans, st.sampled_from(GSTIN_ALPHABET[1:]),
    st.sampled_from(GSTIN_CHARACTER_14),
)


@FAST
@given(gstins)
def test_generated_gstins_pass(gstin):
    assert validate_gstin(gstin.lower()) == gstin


@FAST
@given(gstins, st.integers(0, 14), st.sampled_from(GSTIN_ALPHABET))
def test_any_single_character_changed_is_refused(gstin, position, replacement):
    # Luhn mod 36 doubles to a permutation of 0-35, so every single substitution changes the sum.
    changed = gstin[:position] + replacement + gstin[position + 1:]
    if changed != gstin:
        with pytest.raises(RuleError):
            validate_gstin(changed)


def test_pan():
    assert validate_pan(" aaapl1234c") == "AAAPL1234C"
    with pytest.raises(RuleError, match="5 letters, 4 digits and 1 letter") as caught:
        validate_pan("AAAPL12345")
    assert caught.value.field == "pan"
    with pytest.raises(RuleError, match="holder type"):
        validate_pan("AAAXL1234C")


@FAST
@given(pans)
def test_generated_pans_pass(pan):
    assert validate_pan(pan) == pan


@pytest.mark.parametrize("code", ["01", "27", "38", "97", "99", " 07 "])
def test_state_codes(code):
    assert validate_state_code(code) == code.strip()


@pytest.mark.parametrize("code", ["00", "7", "39", "96", "98", "ab", ""])
def test_unknown_state_codes_are_refused(code):
    with pytest.raises(RuleError, match="GST state code") as caught:
        validate_state_code(code)
    assert caught.value.field == "state_code"


@pytest.mark.parametrize("code", ["8471", "847130", "84713010", "998314"])
def test_hsn_sac_codes(code):
    assert validate_hsn_sac(code) == code


@pytest.mark.parametrize("code", ["847", "84713", "8471301", "847130100", "84a1", ""])
def test_hsn_sac_must_be_4_6_or_8_digits(code):
    with pytest.raises(RuleError, match="4, 6 or 8 digits"):
        validate_hsn_sac(code)


# Double entry


def test_a_balanced_voucher_returns_its_total():
    assert check_balanced([("Dr", 118000), ("Cr", 100000), ("Cr", 9000), ("Cr", 9000)]) == 118000


@pytest.mark.parametrize(("entries", "message"), [
    ([], "at least two entries"),
    ([("Dr", 100)], "at least two entries"),
    ([("Dr", 100), ("Cr", 0)], "entry 2: the amount must be more than zero"),
    ([("Dr", -100), ("Cr", -100)], "entry 1: the amount"),
    ([("Dr", 100), ("dr", 100)], "entry 2: the type must be Dr or Cr"),
    ([("Dr", 100), ("Dr", 100)], "at least one Dr and one Cr"),
    ([("Cr", 100), ("Cr", 100)], "at least one Dr and one Cr"),
    ([("Dr", 100), ("Cr", 99)], r"debits \(1.00\) must equal credits \(0.99\)"),
])
def test_unbalanced_vouchers_name_the_broken_rule(entries, message):
    with pytest.raises(RuleError, match=message) as caught:
        check_balanced(entries)
    assert caught.value.field == "entries"


def test_entry_amounts_must_be_int_paise():
    with pytest.raises(TypeError):
        check_balanced([("Dr", Decimal("1.50")), ("Cr", Decimal("1.50"))])


@st.composite
def balanced_entries(draw):
    """Debits of random sizes, and the same total cut at random points into credits."""
    debits = draw(st.lists(st.integers(1, 10**12), min_size=1, max_size=5))
    total = sum(debits)
    cuts = sorted(draw(st.sets(st.integers(1, total), max_size=4)) - {total})
    credits = [end - start for start, end in zip([0, *cuts], [*cuts, total], strict=True)]
    entries = [("Dr", amount) for amount in debits] + [("Cr", amount) for amount in credits]
    return draw(st.permutations(entries)), total


@FAST
@given(balanced_entries())
def test_balanced_entries_always_pass(case):
    entries, total = case
    assert check_balanced(entries) == total


@FAST
@given(balanced_entries(), st.data())
def test_a_perturbed_entry_always_fails(case, data):
    entries, _ = case
    index = data.draw(st.integers(0, len(entries) - 1))
    entry_type, amount = entries[index]
    delta = data.draw(st.integers(1 - amount, 10**6).filter(bool))
    perturbed = [*entries[:index], (entry_type, amount + delta), *entries[index + 1:]]
    with pytest.raises(RuleError, match="must equal"):
        check_balanced(perturbed)


# GST


@pytest.mark.parametrize(("taxable", "rate", "intra", "split"), [
    (100000, 1800, True, (9000, 9000, 0)),
    (100000, 1800, False, (0, 0, 18000)),
    (50, 1800, True, (5, 5, 0)),  # 4.5 paise each half rounds up: 10 paise against IGST's 9
    (50, 1800, False, (0, 0, 9)),
    (25, 1800, False, (0, 0, 5)),  # 4.5 rounds up
    (25, 1800, True, (2, 2, 0)),  # 2.25 rounds down
    (99999, 0, True, (0, 0, 0)),
    (123456, 25, False, (0, 0, 309)),  # 0.25% of 1234.56 = 3.0864
])
def test_gst_split(taxable, rate, intra, split):
    assert gst_split(taxable, rate, intra) == split


def test_gst_split_refuses_negative_amounts_and_rates_over_100_percent():
    with pytest.raises(RuleError, match="must not be negative"):
        gst_split(-1, 1800, True)
    with pytest.raises(RuleError, match="between 0 and 100%"):
        gst_split(100, 10_001, False)


def decimal_half_up(taxable: int, rate_bp: int, divisor: int) -> int:
    exact = Decimal(taxable) * rate_bp / divisor
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@FAST
@given(st.integers(0, MAX_PAISE), st.integers(0, 10_000))
def test_gst_split_sums(taxable, rate):
    cgst, sgst, igst = gst_split(taxable, rate, intra_state=True)
    assert cgst == sgst == decimal_half_up(taxable, rate, 20_000) and igst == 0
    cgst_, sgst_, full = gst_split(taxable, rate, intra_state=False)
    assert (cgst_, sgst_) == (0, 0) and full == decimal_half_up(taxable, rate, 10_000)
    assert abs(cgst + sgst - full) <= 1


# Balances


@pytest.mark.parametrize(("opening", "side", "debits", "credits", "closing"), [
    (100000, "Dr", 50000, 20000, (130000, "Dr")),
    (10000, "Cr", 5000, 0, (5000, "Cr")),
    (10000, "Dr", 0, 25000, (15000, "Cr")),
    (0, "Cr", 0, 0, (0, "Dr")),
    (500, "Cr", 500, 0, (0, "Dr")),
])
def test_closing_balance(opening, side, debits, credits, closing):
    assert closing_balance(opening, side, debits, credits) == closing


@pytest.mark.parametrize(("arguments", "field"), [
    ((-1, "Dr", 0, 0), "opening_balance"), ((0, "Dr", -1, 0), "debits"),
    ((0, "Dr", 0, -1), "credits"), ((0, "DR", 0, 0), "opening_balance_type"),
])
def test_closing_balance_refuses_bad_input(arguments, field):
    with pytest.raises(RuleError) as caught:
        closing_balance(*arguments)
    assert caught.value.field == field


@FAST
@given(st.integers(0, MAX_PAISE), st.sampled_from(["Dr", "Cr"]), st.integers(0, MAX_PAISE),
       st.integers(0, MAX_PAISE))
def test_closing_balance_keeps_debits_minus_credits(opening, side, debits, credits):
    paise, closing_side = closing_balance(opening, side, debits, credits)
    signed = {"Dr": 1, "Cr": -1}
    assert paise >= 0
    assert paise * signed[closing_side] == opening * signed[side] + debits - credits
