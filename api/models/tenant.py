"""A tenant database: its users and its books.

Money is integer paise (``*_paise``), rates are basis points (``*_bp``), quantities are
thousandths (``*_milli``): exact on MariaDB and SQLite alike.
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from api.models.columns import AuditColumns, Timestamps


class TenantBase(DeclarativeBase):
    pass


class User(Timestamps, TenantBase):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None]


class AccountGroup(Timestamps, TenantBase):
    __tablename__ = "account_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("account_groups.id"))
    nature: Mapped[str] = mapped_column(String(16))
    affects_gross_profit: Mapped[bool] = mapped_column(default=False)
    is_system: Mapped[bool] = mapped_column(default=False)


class Ledger(Timestamps, TenantBase):
    __tablename__ = "ledgers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    account_group_id: Mapped[int] = mapped_column(ForeignKey("account_groups.id"))
    opening_balance_paise: Mapped[int] = mapped_column(BigInteger, default=0)
    opening_balance_type: Mapped[str] = mapped_column(String(2), default="Dr")
    gstin: Mapped[str | None] = mapped_column(String(15))
    pan: Mapped[str | None] = mapped_column(String(10))
    state_code: Mapped[str | None] = mapped_column(String(2))
    bill_wise: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)


class GSTIN(Timestamps, TenantBase):
    __tablename__ = "gstins"

    id: Mapped[int] = mapped_column(primary_key=True)
    gstin: Mapped[str] = mapped_column(String(15), unique=True)
    legal_name: Mapped[str] = mapped_column(String(255))
    trade_name: Mapped[str | None] = mapped_column(String(255))
    state_code: Mapped[str] = mapped_column(String(2))
    registration_type: Mapped[str] = mapped_column(String(16), default="regular")
    is_default: Mapped[bool] = mapped_column(default=False)


class VoucherType(Timestamps, TenantBase):
    __tablename__ = "voucher_types"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    base_type: Mapped[str] = mapped_column(String(16))
    abbreviation: Mapped[str] = mapped_column(String(8))
    is_system: Mapped[bool] = mapped_column(default=False)


class Voucher(Timestamps, TenantBase):
    __tablename__ = "vouchers"

    id: Mapped[int] = mapped_column(primary_key=True)
    voucher_type_id: Mapped[int] = mapped_column(ForeignKey("voucher_types.id"))
    financial_year: Mapped[str] = mapped_column(String(7))
    number: Mapped[int]
    voucher_date: Mapped[date]
    narration: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(64))
    total_paise: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="posted")
    cancelled_at: Mapped[datetime | None]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class VoucherSequence(TenantBase):
    """The last number given per voucher type and financial year (numbers have no gaps)."""

    __tablename__ = "voucher_sequences"

    voucher_type_id: Mapped[int] = mapped_column(ForeignKey("voucher_types.id"),
                                                 primary_key=True)
    financial_year: Mapped[str] = mapped_column(String(7), primary_key=True)
    last_number: Mapped[int]


class VoucherLedgerEntry(TenantBase):
    __tablename__ = "voucher_ledger_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    voucher_id: Mapped[int] = mapped_column(ForeignKey("vouchers.id"))
    line_no: Mapped[int]
    ledger_id: Mapped[int] = mapped_column(ForeignKey("ledgers.id"))
    entry_type: Mapped[str] = mapped_column(String(2))
    amount_paise: Mapped[int] = mapped_column(BigInteger)


class VoucherItem(TenantBase):
    __tablename__ = "voucher_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    voucher_id: Mapped[int] = mapped_column(ForeignKey("vouchers.id"))
    line_no: Mapped[int]
    item_name: Mapped[str] = mapped_column(String(255))
    hsn_sac: Mapped[str | None] = mapped_column(String(8))
    quantity_milli: Mapped[int] = mapped_column(BigInteger)
    unit: Mapped[str | None] = mapped_column(String(16))
    rate_paise: Mapped[int] = mapped_column(BigInteger)
    taxable_paise: Mapped[int] = mapped_column(BigInteger)
    gst_rate_bp: Mapped[int] = mapped_column(default=0)
    cgst_paise: Mapped[int] = mapped_column(BigInteger, default=0)
    sgst_paise: Mapped[int] = mapped_column(BigInteger, default=0)
    igst_paise: Mapped[int] = mapped_column(BigInteger, default=0)
    cess_paise: Mapped[int] = mapped_column(BigInteger, default=0)


class BillWiseDetail(TenantBase):
    __tablename__ = "bill_wise_details"

    id: Mapped[int] = mapped_column(primary_key=True)
    voucher_id: Mapped[int] = mapped_column(ForeignKey("vouchers.id"))
    ledger_id: Mapped[int] = mapped_column(ForeignKey("ledgers.id"))
    reference_type: Mapped[str] = mapped_column(String(16))
    bill_reference: Mapped[str] = mapped_column(String(64))
    entry_type: Mapped[str] = mapped_column(String(2))
    amount_paise: Mapped[int] = mapped_column(BigInteger)
    due_date: Mapped[date | None]


class GSTRate(TenantBase):
    __tablename__ = "gst_rates"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(255))
    hsn_sac: Mapped[str | None] = mapped_column(String(8))
    rate_bp: Mapped[int]
    cess_bp: Mapped[int] = mapped_column(default=0)
    effective_from: Mapped[date]
    effective_to: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class GSTRReturn(Timestamps, TenantBase):
    __tablename__ = "gstr_returns"

    id: Mapped[int] = mapped_column(primary_key=True)
    gstin_id: Mapped[int] = mapped_column(ForeignKey("gstins.id"))
    return_type: Mapped[str] = mapped_column(String(8))
    period: Mapped[str] = mapped_column(String(7))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    summary: Mapped[str | None] = mapped_column(Text)
    arn: Mapped[str | None] = mapped_column(String(32))
    filed_at: Mapped[datetime | None]


class TDSDetail(Timestamps, TenantBase):
    __tablename__ = "tds_details"

    id: Mapped[int] = mapped_column(primary_key=True)
    voucher_id: Mapped[int] = mapped_column(ForeignKey("vouchers.id"))
    section: Mapped[str] = mapped_column(String(8))
    deductee_ledger_id: Mapped[int | None] = mapped_column(ForeignKey("ledgers.id"))
    deductee_pan: Mapped[str] = mapped_column(String(10))
    rate_bp: Mapped[int]
    base_amount_paise: Mapped[int] = mapped_column(BigInteger)
    tds_amount_paise: Mapped[int] = mapped_column(BigInteger)
    deducted_on: Mapped[date]


class EInvoice(Timestamps, TenantBase):
    __tablename__ = "e_invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    voucher_id: Mapped[int] = mapped_column(ForeignKey("vouchers.id"), unique=True)
    irn: Mapped[str] = mapped_column(String(64), unique=True)
    ack_number: Mapped[str] = mapped_column(String(20))
    ack_date: Mapped[datetime]
    signed_qr: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="generated")
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(255))


class AuditLog(AuditColumns, TenantBase):
    __tablename__ = "audit_logs"

    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
