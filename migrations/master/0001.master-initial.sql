-- The master database holds one table: every tenant, where its database lives, and the
-- encrypted connection info (a Fernet token; never plain text).

CREATE TABLE tenant_master (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    subdomain VARCHAR(30) NOT NULL,
    company_name VARCHAR(255) NOT NULL,
    contact_name VARCHAR(255) NULL,
    email VARCHAR(255) NOT NULL,
    phone VARCHAR(20) NULL,
    gstin VARCHAR(15) NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'provisioning',
    status_reason TEXT NULL,
    db_server VARCHAR(64) NOT NULL DEFAULT 'default',
    db_name VARCHAR(64) NULL,
    db_connection_encrypted TEXT NULL,
    subscription_plan VARCHAR(32) NULL,
    subscription_status VARCHAR(16) NOT NULL DEFAULT 'trial',
    subscription_ends_at DATETIME NULL,
    storage_limit_mb INTEGER NOT NULL DEFAULT 1024,
    referral_code VARCHAR(32) NULL,
    referred_by_salesman_id INTEGER NULL,
    referred_by_distributor_id INTEGER NULL,
    provisioned_at DATETIME NULL,
    deleted_at DATETIME NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uq_tenant_master_subdomain UNIQUE (subdomain),
    CONSTRAINT uq_tenant_master_db_name UNIQUE (db_name),
    CONSTRAINT ck_tenant_master_status
        CHECK (status IN ('provisioning', 'active', 'suspended', 'failed', 'deleted')),
    CONSTRAINT ck_tenant_master_subscription
        CHECK (subscription_status IN ('trial', 'active', 'past_due', 'cancelled')),
    CONSTRAINT ck_tenant_master_storage CHECK (storage_limit_mb > 0)
);
CREATE INDEX ix_tenant_master_status ON tenant_master (status);
CREATE INDEX ix_tenant_master_referral_code ON tenant_master (referral_code);
