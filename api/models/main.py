"""The main database: admin users, the sales network, subscriptions, leads and the audit log.

Money is integer paise (``*_paise``), rates are basis points (``*_bp``, 1800 = 18%).
``tenant_id`` columns hold tenant_master ids from the master database: no foreign key crosses
databases.
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from api.models.columns import AuditColumns, Timestamps


class MainBase(DeclarativeBase):
    pass


class AdminRole(MainBase):
    __tablename__ = "admin_roles"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    description: Mapped[str] = mapped_column(String(255))


class AdminUser(Timestamps, MainBase):
    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(ForeignKey("admin_roles.name"))
    is_active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None]


class Distributor(Timestamps, MainBase):
    __tablename__ = "distributors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    company_name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(255), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    gstin: Mapped[str | None] = mapped_column(String(15))
    pan: Mapped[str | None] = mapped_column(String(10))
    state_code: Mapped[str | None] = mapped_column(String(2))
    commission_rate_bp: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(default=True)


class Salesman(Timestamps, MainBase):
    __tablename__ = "salesmen"

    id: Mapped[int] = mapped_column(primary_key=True)
    distributor_id: Mapped[int | None] = mapped_column(ForeignKey("distributors.id"))
    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(255), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    pan: Mapped[str | None] = mapped_column(String(10))
    commission_rate_bp: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(default=True)


class SubscriptionPlan(Timestamps, MainBase):
    __tablename__ = "subscription_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    price_paise: Mapped[int] = mapped_column(BigInteger)
    billing_period: Mapped[str] = mapped_column(String(16))
    max_users: Mapped[int | None]
    storage_limit_mb: Mapped[int]
    is_active: Mapped[bool] = mapped_column(default=True)


class ReferralCode(Timestamps, MainBase):
    __tablename__ = "referral_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    salesman_id: Mapped[int | None] = mapped_column(ForeignKey("salesmen.id"))
    distributor_id: Mapped[int | None] = mapped_column(ForeignKey("distributors.id"))
    discount_bp: Mapped[int] = mapped_column(default=0)
    max_uses: Mapped[int | None]
    expires_at: Mapped[datetime | None]
    is_active: Mapped[bool] = mapped_column(default=True)


class ReferralReward(Timestamps, MainBase):
    __tablename__ = "referral_rewards"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_code_id: Mapped[int] = mapped_column(ForeignKey("referral_codes.id"))
    tenant_id: Mapped[int]
    reward_type: Mapped[str] = mapped_column(String(32))
    amount_paise: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending")


class Payout(Timestamps, MainBase):
    __tablename__ = "payouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    salesman_id: Mapped[int | None] = mapped_column(ForeignKey("salesmen.id"))
    distributor_id: Mapped[int | None] = mapped_column(ForeignKey("distributors.id"))
    period_start: Mapped[date]
    period_end: Mapped[date]
    amount_paise: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str | None] = mapped_column(String(64))
    paid_at: Mapped[datetime | None]


class Commission(Timestamps, MainBase):
    __tablename__ = "commissions"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int]
    salesman_id: Mapped[int | None] = mapped_column(ForeignKey("salesmen.id"))
    distributor_id: Mapped[int | None] = mapped_column(ForeignKey("distributors.id"))
    referral_code_id: Mapped[int | None] = mapped_column(ForeignKey("referral_codes.id"))
    subscription_plan_id: Mapped[int | None] = mapped_column(ForeignKey("subscription_plans.id"))
    base_amount_paise: Mapped[int] = mapped_column(BigInteger)
    rate_bp: Mapped[int]
    amount_paise: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    payout_id: Mapped[int | None] = mapped_column(ForeignKey("payouts.id"))
    earned_on: Mapped[date]


class Lead(Timestamps, MainBase):
    __tablename__ = "leads"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    company_name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(20))
    source: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="new")
    salesman_id: Mapped[int | None] = mapped_column(ForeignKey("salesmen.id"))
    distributor_id: Mapped[int | None] = mapped_column(ForeignKey("distributors.id"))
    converted_tenant_id: Mapped[int | None]
    notes: Mapped[str | None] = mapped_column(Text)


class LeadActivity(MainBase):
    __tablename__ = "lead_activities"

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"))
    admin_user_id: Mapped[int | None] = mapped_column(ForeignKey("admin_users.id"))
    activity_type: Mapped[str] = mapped_column(String(16))
    notes: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Target(Timestamps, MainBase):
    __tablename__ = "targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    salesman_id: Mapped[int | None] = mapped_column(ForeignKey("salesmen.id"))
    distributor_id: Mapped[int | None] = mapped_column(ForeignKey("distributors.id"))
    period_start: Mapped[date]
    period_end: Mapped[date]
    target_tenants: Mapped[int] = mapped_column(default=0)
    target_revenue_paise: Mapped[int] = mapped_column(BigInteger, default=0)


class AuditLog(AuditColumns, MainBase):
    __tablename__ = "audit_logs"

    admin_user_id: Mapped[int | None] = mapped_column(ForeignKey("admin_users.id"))
