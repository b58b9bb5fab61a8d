"""Every tier migrates from empty on both backends, a second apply is a no-op, the seeded data
is there, the models match the tables, and money stays exact."""

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models.main import MainBase
from api.models.master import MasterBase
from api.models.tenant import (
    AccountGroup,
    GSTRate,
    Ledger,
    TenantBase,
    Voucher,
    VoucherLedgerEntry,
    VoucherType,
)
from api.tenancy.backends import backend_for
from api.tenancy.migrations import (
    MIGRATIONS_DIR,
    Tier,
    apply_migrations,
    migration_ids,
    pending_ids,
)

BASES = {Tier.MAIN: MainBase, Tier.MASTER: MasterBase, Tier.TENANT: TenantBase}


@pytest.fixture
def migrated(settings):
    """One database per tier, each created and migrated: {tier: engine}."""
    backend = backend_for(settings)
    engines = {}
    for tier in Tier:
        name = f"{settings.tenant_db_prefix}{tier}"
        backend.create_database(name)
        assert apply_migrations(backend, name, tier) == migration_ids(tier)
        engines[tier] = backend.create_engine(name)
    yield backend, engines
    for engine in engines.values():
        engine.dispose()
    backend.dispose()


def test_a_second_apply_is_a_no_op(migrated, settings):
    backend, engines = migrated
    for tier, engine in engines.items():
        assert apply_migrations(backend, f"{settings.tenant_db_prefix}{tier}", tier) == []
        assert pending_ids(engine, tier) == []


def test_migration_ids_are_unique_across_tiers_and_carry_their_tier():
    ids = [migration_id for tier in Tier for migration_id in migration_ids(tier)]
    assert len(ids) == len(set(ids))
    for tier in Tier:
        assert all(f".{tier}-" in migration_id for migration_id in migration_ids(tier))
        for path in (MIGRATIONS_DIR / tier).glob("*.sql"):
            if not path.name.endswith(".rollback.sql"):
                assert path.with_name(path.stem + ".rollback.sql").exists(), path


def test_models_and_tables_do_not_drift(migrated):
    _, engines = migrated
    for tier, base in BASES.items():
        inspector = sa.inspect(engines[tier])
        tables = set(inspector.get_table_names()) - {
            "_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock"}
        assert tables == set(base.metadata.tables), tier
        for table in base.metadata.sorted_tables:
            columns = {c["name"]: c for c in inspector.get_columns(table.name)}
            assert set(columns) == {c.name for c in table.columns}, table.name
            for column in table.columns:
                assert columns[column.name]["nullable"] == column.nullable or \
                    column.primary_key, f"{table.name}.{column.name} nullability"


def test_tenant_defaults_are_seeded(migrated):
    _, engines = migrated
    with Session(engines[Tier.TENANT]) as session:
        groups = session.scalars(sa.select(AccountGroup)).all()
        primary = [g for g in groups if g.parent_id is None]
        assert (len(groups), len(primary)) == (28, 15)
        assert all(g.is_system for g in groups)
        by_id = {g.id: g for g in groups}
        for sub in (g for g in groups if g.parent_id is not None):
            assert sub.nature == by_id[sub.parent_id].nature
        assert by_id[next(g.id for g in groups if g.name == "Sundry Debtors")].nature == "assets"

        names = set(session.scalars(sa.select(VoucherType.name)))
        assert names == {"Contra", "Payment", "Receipt", "Journal", "Sales", "Purchase",
                         "Credit Note", "Debit Note"}

        def rates_on(day):
            query = sa.select(GSTRate.rate_bp).where(
                GSTRate.effective_from <= day,
                sa.or_(GSTRate.effective_to.is_(None), GSTRate.effective_to >= day))
            return set(session.scalars(query))

        assert {1200, 2800} <= rates_on(date(2025, 9, 21))
        assert 4000 not in rates_on(date(2025, 9, 21))
        after = rates_on(date(2025, 9, 22))
        assert 4000 in after and not {1200, 2800} & after


def test_money_is_exact(migrated):
    """A float would lose paise: 0.1 + 0.2 != 0.3. Integer paise sum exactly in SQL."""
    _, engines = migrated
    with Session(engines[Tier.TENANT]) as session:
        group = session.scalar(sa.select(AccountGroup).where(AccountGroup.code == "cash_in_hand"))
        big = 9_007_199_254_740_993  # 2**53 + 1: the first integer a double cannot hold
        cash = Ledger(name="Cash", account_group_id=group.id, opening_balance_paise=big)
        sales = Ledger(name="Sales", account_group_id=group.id)
        session.add_all([cash, sales])
        journal = session.scalar(sa.select(VoucherType).where(VoucherType.name == "Journal"))
        session.flush()
        voucher = Voucher(voucher_type_id=journal.id, financial_year="2026-27", number=1,
                          voucher_date=date(2026, 11, 25), total_paise=30)
        session.add(voucher)
        session.flush()
        for line, amount in enumerate((10, 20, 30)):
            session.add(VoucherLedgerEntry(voucher_id=voucher.id, line_no=line,
                                           ledger_id=cash.id if line < 2 else sales.id,
                                           entry_type="Dr" if line < 2 else "Cr",
                                           amount_paise=amount))
        session.commit()
        total = session.scalar(sa.select(sa.func.sum(VoucherLedgerEntry.amount_paise)).where(
            VoucherLedgerEntry.entry_type == "Dr"))
        assert total == 30 and not isinstance(total, float)  # int, or Decimal on MySQL
        stored = session.scalar(sa.select(Ledger.opening_balance_paise).where(
            Ledger.name == "Cash"))
        assert stored == big and stored != float(big)


def test_yoyo_cli_lists_and_applies(settings):
    backend = backend_for(settings)
    name = f"{settings.tenant_db_prefix}cli"
    backend.create_database(name)
    yoyo = Path(sys.executable).with_name("yoyo")
    command = [str(yoyo), "--no-config-file", "--database", backend.yoyo_url(name)]
    folder = str(MIGRATIONS_DIR / "tenant")
    env = {**os.environ, "PATH": f"{yoyo.parent}:{os.environ['PATH']}"}
    subprocess.run([*command[:1], "apply", "--batch", *command[1:], folder], check=True,
                   env=env, capture_output=True, timeout=120)
    listing = subprocess.run([*command[:1], "list", *command[1:], folder], check=True,
                             env=env, capture_output=True, text=True, timeout=60).stdout
    for migration_id in migration_ids(Tier.TENANT):
        assert f"A         {migration_id}" in listing
    engine = backend.create_engine(name)
    assert pending_ids(engine, Tier.TENANT) == []
    engine.dispose()
    backend.dispose()
