"""The master database: tenant_master, the routing table from subdomain to tenant database."""

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from api.models.columns import Timestamps


class MasterBase(DeclarativeBase):
    pass


class TenantMaster(Timestamps, MasterBase):
    __tablename__ = "tenant_master"
    # The directory's "which tenants changed since T?" poll (api/tenancy/routing.py).
    __table_args__ = (Index("ix_tenant_master_updated_at", "updated_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subdomain: Mapped[str] = mapped_column(String(30), unique=True)
    company_name: Mapped[str] = mapped_column(String(255))
    contact_name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(20))
    gstin: Mapped[str | None] = mapped_column(String(15))
    status: Mapped[str] = mapped_column(String(16), default="provisioning")
    status_reason: Mapped[str | None] = mapped_column(Text)
    db_server: Mapped[str] = mapped_column(String(64), default="default")
    db_name: Mapped[str | None] = mapped_column(String(64), unique=True)
    # A Fernet token of the JSON connection details (host, port, user, password, database).
    db_connection_encrypted: Mapped[str | None] = mapped_column(Text)
    subscription_plan: Mapped[str | None] = mapped_column(String(32))
    subscription_status: Mapped[str] = mapped_column(String(16), default="trial")
    subscription_ends_at: Mapped[datetime | None]
    storage_limit_mb: Mapped[int] = mapped_column(default=1024)
    referral_code: Mapped[str | None] = mapped_column(String(32))
    referred_by_salesman_id: Mapped[int | None]
    referred_by_distributor_id: Mapped[int | None]
    provisioned_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    # While status is 'moving' (finvera tenants move): where to, and the status to return to.
    moving_to: Mapped[str | None] = mapped_column(String(64))
    status_before_move: Mapped[str | None] = mapped_column(String(16))
