-- Moving a tenant's database to another server (finvera tenants move): while it is copied the
-- tenant is 'moving' (requests answer 503 tenant_moving) and moving_to names the server it goes
-- to. One statement, so that MySQL, which commits each DDL statement, applies all or nothing.
-- Only MySQL/MariaDB widen the status CHECK (the /*! */ part): moves need TENANT_DB_SERVERS,
-- which the SQLite backend refuses, and SQLite cannot change a CHECK without a table rebuild.
-- depends: 0001.master-initial

ALTER TABLE tenant_master ADD COLUMN moving_to VARCHAR(64) NULL
    /*!, DROP CONSTRAINT ck_tenant_master_status, ADD CONSTRAINT ck_tenant_master_status
        CHECK (status IN ('provisioning', 'active', 'suspended', 'failed', 'deleted', 'moving')) */;
