"""The chart of accounts: account groups (seeded standard ones plus custom) and ledgers."""

from __future__ import annotations

import sqlalchemy as sa
from flask_openapi3 import Tag
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from typing_extensions import TypedDict

from api.accounting.fields import GSTIN, PAN, Paise, StateCode
from api.accounting.rules import format_paise
from api.audit import audit
from api.auth import tenant_user_required
from api.errors import CONFLICT, ApiError
from api.listing import PageQuery, paginate
from api.models.tenant import AccountGroup, Ledger, VoucherLedgerEntry
from api.responses import DELETED, Answers, ok, shown
from api.schemas import IdPath, Name, RowId
from api.tenant_request import tenant_blueprint, tenant_session

bp = tenant_blueprint("chart", __name__, Tag(name="chart of accounts"))
BOOKKEEPERS = ("admin", "accountant")
SECURITY = [{"bearer": []}]


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


def ledger_json(ledger: Ledger) -> LedgerJson:
    return {"id": ledger.id, "name": ledger.name, "account_group_id": ledger.account_group_id,
            "opening_balance": format_paise(ledger.opening_balance_paise),
            "opening_balance_type": ledger.opening_balance_type, "gstin": ledger.gstin,
            "pan": ledger.pan, "state_code": ledger.state_code, "bill_wise": ledger.bill_wise,
            "is_active": ledger.is_active}


GROUPS = Answers("account_group", "account_groups", group_json)
LEDGERS = Answers("ledger", "ledgers", ledger_json)


def get_or_404(model, entity_id: int, what: str):
    row = tenant_session().get(model, entity_id)
    if row is None:
        raise ApiError(404, "not_found", f"No {what} with id {entity_id}.")
    return row


def commit_or_conflict(field: str, message: str) -> None:
    """Commit the request's tenant session; a unique-constraint clash is a 409 on ``field``."""
    try:
        tenant_session().commit()
    except IntegrityError:
        tenant_session().rollback()
        raise ApiError(409, "conflict", message, {field: message}) from None


def _group(group_id: int, field: str) -> AccountGroup:
    group = tenant_session().get(AccountGroup, group_id)
    if group is None:
        raise ApiError(400, "validation_error", "No such account group.",
                       {field: f"no account group with id {group_id}"})
    return group


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


@bp.get("/account-groups", security=SECURITY, responses=GROUPS.page)
@tenant_user_required()
def list_groups(query: GroupQuery):
    """The chart's groups: the seeded standard ones and custom ones."""
    select = sa.select(AccountGroup).order_by(AccountGroup.id)
    if query.parent_id is not None:
        select = select.where(AccountGroup.parent_id == query.parent_id)
    groups, total = paginate(tenant_session(), select, query)
    return ok(account_groups=[group_json(group) for group in groups], total=total)


@bp.post("/account-groups", security=SECURITY, responses=GROUPS.created | CONFLICT)
@tenant_user_required(*BOOKKEEPERS)
def create_group(body: GroupCreate):
    """A custom group under a parent; it takes the parent's nature."""
    parent = _group(body.parent_id, "parent_id")
    _name_free(AccountGroup, body.name)
    group = AccountGroup(name=body.name, parent_id=parent.id, nature=parent.nature,
                         affects_gross_profit=parent.affects_gross_profit, is_system=False)
    session = tenant_session()
    session.add(group)
    session.flush()
    audit(session, "create", "account_group", group.id, after=group_json(group))
    commit_or_conflict("name", f"an account group named {body.name!r} exists")
    return ok(201, account_group=group_json(group))


def _name_free(model, name: str, except_id: int | None = None) -> None:
    """Raise 409 if another row of ``model`` has ``name``; names are unique per tenant."""
    query = sa.select(model.id).where(model.name == name)
    if except_id:
        query = query.where(model.id != except_id)
    if tenant_session().scalar(query) is not None:
        raise ApiError(409, "conflict", f"{name!r} is taken.", {"name": "is taken"})


@bp.get("/account-groups/<int:id>", security=SECURITY, responses=GROUPS.one)
@tenant_user_required()
def get_group(path: IdPath):
    return ok(account_group=group_json(get_or_404(AccountGroup, path.id, "account group")))


@bp.patch("/account-groups/<int:id>", security=SECURITY, responses=GROUPS.one | CONFLICT)
@tenant_user_required(*BOOKKEEPERS)
def update_group(path: IdPath, body: GroupUpdate):
    """Rename or move a custom group; seeded standard groups cannot be changed."""
    group = get_or_404(AccountGroup, path.id, "account group")
    if group.is_system:
        raise ApiError(409, "system_group", "Standard account groups cannot be changed.")
    before = group_json(group)
    if body.name is not None:
        _name_free(AccountGroup, body.name, group.id)
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
    audit(tenant_session(), "update", "account_group", group.id, before, group_json(group))
    commit_or_conflict("name", "is taken")
    return ok(account_group=group_json(group))


@bp.delete("/account-groups/<int:id>", security=SECURITY, responses=DELETED | CONFLICT)
@tenant_user_required(*BOOKKEEPERS)
def delete_group(path: IdPath):
    """Delete a custom group that holds no sub-group and no ledger."""
    session = tenant_session()
    group = get_or_404(AccountGroup, path.id, "account group")
    if group.is_system:
        raise ApiError(409, "system_group", "Standard account groups cannot be deleted.")
    if session.scalar(sa.select(AccountGroup.id).where(AccountGroup.parent_id == group.id)):
        raise ApiError(409, "group_in_use", "The group has sub-groups; move them first.")
    if session.scalar(sa.select(Ledger.id).where(Ledger.account_group_id == group.id)):
        raise ApiError(409, "group_in_use", "The group has ledgers; move them first.")
    audit(session, "delete", "account_group", group.id, before=group_json(group))
    session.delete(group)
    session.commit()
    return ok(deleted={"id": path.id})


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


@bp.get("/ledgers", security=SECURITY, responses=LEDGERS.page)
@tenant_user_required()
def list_ledgers(query: LedgerQuery):
    """Ledgers by name, filtered by group or a name search."""
    select = sa.select(Ledger).order_by(Ledger.name, Ledger.id)
    if query.account_group_id is not None:
        select = select.where(Ledger.account_group_id == query.account_group_id)
    if query.search:
        escaped = query.search.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        select = select.where(Ledger.name.like(f"%{escaped}%", escape="\\"))
    ledgers, total = paginate(tenant_session(), select, query)
    return ok(ledgers=[ledger_json(ledger) for ledger in ledgers], total=total)


@bp.post("/ledgers", security=SECURITY, responses=LEDGERS.created | CONFLICT)
@tenant_user_required(*BOOKKEEPERS)
def create_ledger(body: LedgerCreate):
    """A ledger under an account group; names are unique in the tenant (409)."""
    _group(body.account_group_id, "account_group_id")
    _name_free(Ledger, body.name)
    values = body.model_dump()
    ledger = Ledger(**{LEDGER_COLUMNS.get(k, k): v for k, v in values.items()})
    session = tenant_session()
    session.add(ledger)
    session.flush()
    audit(session, "create", "ledger", ledger.id, after=ledger_json(ledger))
    commit_or_conflict("name", f"a ledger named {body.name!r} exists")
    return ok(201, ledger=ledger_json(ledger))


@bp.get("/ledgers/<int:id>", security=SECURITY, responses=LEDGERS.one)
@tenant_user_required()
def get_ledger(path: IdPath):
    return ok(ledger=ledger_json(get_or_404(Ledger, path.id, "ledger")))


@bp.patch("/ledgers/<int:id>", security=SECURITY, responses=LEDGERS.one | CONFLICT)
@tenant_user_required(*BOOKKEEPERS)
def update_ledger(path: IdPath, body: LedgerUpdate):
    ledger = get_or_404(Ledger, path.id, "ledger")
    before = ledger_json(ledger)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name") is not None:
        _name_free(Ledger, changes["name"], ledger.id)
    if changes.get("account_group_id") is not None:
        _group(changes["account_group_id"], "account_group_id")
    for name, value in changes.items():
        if value is None and name in ("name", "account_group_id", "opening_balance",
                                      "opening_balance_type", "bill_wise", "is_active"):
            raise ApiError(400, "validation_error", f"{name} cannot be null.",
                           {name: "cannot be null"})
        setattr(ledger, LEDGER_COLUMNS.get(name, name), value)
    audit(tenant_session(), "update", "ledger", ledger.id, before, ledger_json(ledger))
    commit_or_conflict("name", "is taken")
    return ok(ledger=ledger_json(ledger))


@bp.delete("/ledgers/<int:id>", security=SECURITY, responses=DELETED | CONFLICT)
@tenant_user_required(*BOOKKEEPERS)
def delete_ledger(path: IdPath):
    """Delete a ledger no voucher uses (409 saying so otherwise)."""
    session = tenant_session()
    ledger = get_or_404(Ledger, path.id, "ledger")
    used = session.scalar(sa.select(sa.func.count()).where(
        VoucherLedgerEntry.ledger_id == ledger.id))
    if used:
        raise ApiError(409, "ledger_in_use",
                       f"The ledger is used by {used} voucher entries; it cannot be deleted "
                       "(mark it inactive instead).")
    audit(session, "delete", "ledger", ledger.id, before=ledger_json(ledger))
    session.delete(ledger)
    session.commit()
    return ok(deleted={"id": path.id})


