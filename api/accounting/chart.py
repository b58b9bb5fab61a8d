"""The chart of accounts: account groups (seeded standard ones plus custom) and ledgers."""

from __future__ import annotations

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from api.accounting.fields import GSTIN, PAN, Paise, StateCode
from api.accounting.rules import format_paise
from api.auth import tenant_user_required
from api.errors import CONFLICT, ApiError
from api.listing import PageQuery, page_rows, paginate
from api.models.tenant import AccountGroup, Ledger, VoucherLedgerEntry
from api.operations import IN_TENANT, ensure_unique, get_or_404, referenced
from api.responses import DELETED, Answers, ok, shown
from api.schemas import IdPath, Name, RowId
from api.tenant_request import tenant_blueprint, tenant_connection, tenant_session

bp = tenant_blueprint("chart", __name__, "chart of accounts")
BOOKKEEPERS = ("admin", "accountant")


@shown
class AccountGroupJson(TypedDict):
    id: int
    code: str | None
    name: str
    parent_id: int | None
    nature: str
    affects_gross_profit: bool
    is_system: bool


@shown
class LedgerJson(TypedDict):
    id: int
    name: str
    account_group_id: int
    opening_balance: str
    opening_balance_type: str
    gstin: str | None
    pan: str | None
    state_code: str | None
    bill_wise: bool
    is_active: bool


def group_json(group: AccountGroup) -> AccountGroupJson:
    return {"id": group.id, "code": group.code, "name": group.name,
            "parent_id": group.parent_id, "nature": group.nature,
            "affects_gross_profit": group.affects_gross_profit, "is_system": group.is_system}


def ledger_json(ledger: Ledger | sa.Row) -> LedgerJson:
    return {"id": ledger.id, "name": ledger.name, "account_group_id": ledger.account_group_id,
            "opening_balance": format_paise(ledger.opening_balance_paise),
            "opening_balance_type": ledger.opening_balance_type, "gstin": ledger.gstin,
            "pan": ledger.pan, "state_code": ledger.state_code, "bill_wise": ledger.bill_wise,
            "is_active": ledger.is_active}


GROUPS = Answers("account_group", "account_groups", group_json)
LEDGERS = Answers("ledger", "ledgers", ledger_json)


def _group(group_id: int, field: str) -> AccountGroup:
    """The account group ``field`` names, or a 400 on ``field``."""
    return referenced(tenant_session(), AccountGroup, group_id, field, "account group")


# ---- account groups ----

class GroupQuery(PageQuery):
    parent_id: RowId | None = None


class GroupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    parent_id: RowId


class GroupUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    parent_id: RowId | None = None


@bp.get("/account-groups", responses=GROUPS.page)
@tenant_user_required()
def list_groups(query: GroupQuery):
    """The chart's groups: the seeded standard ones and custom ones."""
    select = sa.select(AccountGroup).order_by(AccountGroup.id)
    if query.parent_id is not None:
        select = select.where(AccountGroup.parent_id == query.parent_id)
    groups, total = paginate(tenant_session(), select, query)
    return ok(account_groups=[group_json(group) for group in groups], total=total)


@bp.post("/account-groups", responses=GROUPS.created | CONFLICT)
@tenant_user_required(*BOOKKEEPERS)
def create_group(body: GroupCreate):
    """A custom group under a parent; it takes the parent's nature."""
    parent = _group(body.parent_id, "parent_id")
    ensure_unique(tenant_session(), AccountGroup, "name", body.name)
    group = AccountGroup(name=body.name, parent_id=parent.id, nature=parent.nature,
                         affects_gross_profit=parent.affects_gross_profit, is_system=False)
    return IN_TENANT.save(group, "account_group", group_json, unique_field="name",
                          conflict=f"an account group named {body.name!r} exists")


@bp.get("/account-groups/<int:id>", responses=GROUPS.one)
@tenant_user_required()
def get_group(path: IdPath):
    group = get_or_404(tenant_session(), AccountGroup, path.id, "account group")
    return ok(account_group=group_json(group))


@bp.patch("/account-groups/<int:id>", responses=GROUPS.one | CONFLICT)
@tenant_user_required(*BOOKKEEPERS)
def update_group(path: IdPath, body: GroupUpdate):
    """Rename or move a custom group; seeded standard groups cannot be changed."""
    group = get_or_404(tenant_session(), AccountGroup, path.id, "account group")
    if group.is_system:
        raise ApiError(409, "system_group", "Standard account groups cannot be changed.")
    before = group_json(group)
    if body.name is not None:
        ensure_unique(tenant_session(), AccountGroup, "name", body.name, group.id)
        group.name = body.name
    if body.parent_id is not None:
        parent = _group(body.parent_id, "parent_id")
        ancestor = parent
        while ancestor is not None:  # no group may become its own ancestor
            if ancestor.id == group.id:
                raise ApiError(400, "validation_error", "A group cannot sit under itself.",
                               {"parent_id": "would make a cycle"})
            ancestor = tenant_session().get(AccountGroup, ancestor.parent_id) \
                if ancestor.parent_id else None
        group.parent_id, group.nature = parent.id, parent.nature
        group.affects_gross_profit = parent.affects_gross_profit
    return IN_TENANT.save(group, "account_group", group_json, before=before,
                          unique_field="name")


@bp.delete("/account-groups/<int:id>", responses=DELETED | CONFLICT)
@tenant_user_required(*BOOKKEEPERS)
def delete_group(path: IdPath):
    """Delete a custom group that holds no sub-group and no ledger."""
    session = tenant_session()
    group = get_or_404(session, AccountGroup, path.id, "account group")
    if group.is_system:
        raise ApiError(409, "system_group", "Standard account groups cannot be deleted.")
    if session.scalar(sa.select(AccountGroup.id).where(AccountGroup.parent_id == group.id)):
        raise ApiError(409, "group_in_use", "The group has sub-groups; move them first.")
    if session.scalar(sa.select(Ledger.id).where(Ledger.account_group_id == group.id)):
        raise ApiError(409, "group_in_use", "The group has ledgers; move them first.")
    return IN_TENANT.delete(group, "account_group", group_json)


# ---- ledgers ----

class LedgerQuery(PageQuery):
    account_group_id: RowId | None = None
    search: str | None = Field(None, max_length=100)


class LedgerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    account_group_id: RowId
    opening_balance: Paise = 0
    opening_balance_type: str = Field("Dr", pattern="^(Dr|Cr)$")
    gstin: GSTIN | None = None
    pan: PAN | None = None
    state_code: StateCode | None = None
    bill_wise: bool = False


class LedgerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    account_group_id: RowId | None = None
    opening_balance: Paise | None = None
    opening_balance_type: str | None = Field(None, pattern="^(Dr|Cr)$")
    gstin: GSTIN | None = None
    pan: PAN | None = None
    state_code: StateCode | None = None
    bill_wise: bool | None = None
    is_active: bool | None = None


LEDGER_COLUMNS = {"opening_balance": "opening_balance_paise"}
# The list reads the ledgers table under its own name as an alias: a tenant's view of a shared
# pool names its database in every schema-qualified name of a statement as it sends it
# (schema_translate_map), and an alias leaves one such name (FROM) instead of one per column.
LEDGER_TABLE = Ledger.__table__.alias("ledgers")
# What ledger_json shows, as Core columns: the list reads plain rows of these (no entities).
LEDGER_ROW = tuple(LEDGER_TABLE.c[name] for name in (
    "id", "name", "account_group_id", "opening_balance_paise", "opening_balance_type", "gstin",
    "pan", "state_code", "bill_wise", "is_active"))


def ledgers_in_order() -> sa.Select:
    """Every ledger's LEDGER_ROW, by name (then id)."""
    return sa.select(*LEDGER_ROW).order_by(LEDGER_TABLE.c.name, LEDGER_TABLE.c.id)


@bp.get("/ledgers", responses=LEDGERS.page)
@tenant_user_required()
def list_ledgers(query: LedgerQuery):
    """Ledgers by name, filtered by group or a name search."""
    select, table = ledgers_in_order(), LEDGER_TABLE
    if query.account_group_id is not None:
        select = select.where(table.c.account_group_id == query.account_group_id)
    if query.search:
        escaped = query.search.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        select = select.where(table.c.name.like(f"%{escaped}%", escape="\\"))
    ledgers, total = page_rows(tenant_connection(), select, query)
    return ok(ledgers=[ledger_json(ledger) for ledger in ledgers], total=total)


@bp.post("/ledgers", responses=LEDGERS.created | CONFLICT)
@tenant_user_required(*BOOKKEEPERS)
def create_ledger(body: LedgerCreate):
    """A ledger under an account group; names are unique in the tenant (409)."""
    _group(body.account_group_id, "account_group_id")
    ensure_unique(tenant_session(), Ledger, "name", body.name)
    values = body.model_dump()
    ledger = Ledger(**{LEDGER_COLUMNS.get(k, k): v for k, v in values.items()})
    return IN_TENANT.save(ledger, "ledger", ledger_json, unique_field="name",
                          conflict=f"a ledger named {body.name!r} exists")


@bp.get("/ledgers/<int:id>", responses=LEDGERS.one)
@tenant_user_required()
def get_ledger(path: IdPath):
    return ok(ledger=ledger_json(get_or_404(tenant_session(), Ledger, path.id, "ledger")))


@bp.patch("/ledgers/<int:id>", responses=LEDGERS.one | CONFLICT)
@tenant_user_required(*BOOKKEEPERS)
def update_ledger(path: IdPath, body: LedgerUpdate):
    ledger = get_or_404(tenant_session(), Ledger, path.id, "ledger")
    before = ledger_json(ledger)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name") is not None:
        ensure_unique(tenant_session(), Ledger, "name", changes["name"], ledger.id)
    if changes.get("account_group_id") is not None:
        _group(changes["account_group_id"], "account_group_id")
    for name, value in changes.items():
        if value is None and name in ("name", "account_group_id", "opening_balance",
                                      "opening_balance_type", "bill_wise", "is_active"):
            raise ApiError(400, "validation_error", f"{name} cannot be null.",
                           {name: "cannot be null"})
        setattr(ledger, LEDGER_COLUMNS.get(name, name), value)
    return IN_TENANT.save(ledger, "ledger", ledger_json, before=before, unique_field="name")


@bp.delete("/ledgers/<int:id>", responses=DELETED | CONFLICT)
@tenant_user_required(*BOOKKEEPERS)
def delete_ledger(path: IdPath):
    """Delete a ledger no voucher uses (409 saying so otherwise)."""
    session = tenant_session()
    ledger = get_or_404(session, Ledger, path.id, "ledger")
    used = session.scalar(sa.select(sa.func.count()).where(
        VoucherLedgerEntry.ledger_id == ledger.id))
    if used:
        raise ApiError(409, "ledger_in_use",
                       f"The ledger is used by {used} voucher entries; it cannot be deleted "
                       "(mark it inactive instead).")
    return IN_TENANT.delete(ledger, "ledger", ledger_json)


