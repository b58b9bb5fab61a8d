"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from flask_openapi3 import APIBlueprint, Tag
from sqlalchemy.exc import SQLAlchemyError
from typing_extensions import TypedDict

from api.db import databases
from api.errors import COMMON_RESPONSES, error_answers
from api.responses import envelope, failure, ok, shown
from api.tenancy.migrations import pending_ids

tag = Tag(name="health", description="Probes")
bp = APIBlueprint("health", __name__, abp_tags=[tag], abp_responses=COMMON_RESPONSES)


@shown
class TierReady(TypedDict):
    name: str
    status: str


UP = {200: envelope("Up", status=str)}
READY = {200: envelope("Readiness", master_db=TierReady, main_db=TierReady)} | error_answers(503)


@bp.get("/healthz", responses=UP)
def healthz():
    """The process is up."""
    return ok(status="up")


@bp.get("/readyz", responses=READY)
def readyz():
    """Main and master are reachable and fully migrated; 503 naming the failing part otherwise."""
    problems, report = {}, {}
    for tier, (name, engine) in databases().tiers().items():
        part = f"{tier}_db"
        try:
            pending = pending_ids(engine, tier)
        except SQLAlchemyError as exc:
            problems[part] = f"{name} is unreachable: {type(exc.orig or exc).__name__}"
            continue
        if pending:
            problems[part] = f"{name} has {len(pending)} pending migrations: {', '.join(pending)}"
        else:
            report[part] = {"name": name, "status": "ready"}
    if problems:
        return failure(503, "not_ready", "A platform database is not ready.", problems)
    return ok(**report)
