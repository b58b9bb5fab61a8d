-- tenant_master.updated_at, which every change to a row sets (the ORM's and Core's onupdate),
-- indexed: each API process asks "which tenants changed since T?" once per
-- TENANT_CACHE_TTL_SECONDS, to drop those from its directory cache (api/tenancy/routing.py).
-- depends: 0003.master-status-before-move

CREATE INDEX ix_tenant_master_updated_at ON tenant_master (updated_at);
