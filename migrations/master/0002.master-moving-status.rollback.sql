ALTER TABLE tenant_master DROP COLUMN moving_to
    /*!, DROP CONSTRAINT ck_tenant_master_status, ADD CONSTRAINT ck_tenant_master_status
        CHECK (status IN ('provisioning', 'active', 'suspended', 'failed', 'deleted')) */;
