-- Platform data of the main database: admin users and roles, the sales network,
-- subscription plans, referrals, commissions, payouts, leads, targets and the audit log.

CREATE TABLE admin_roles (
    name VARCHAR(32) NOT NULL PRIMARY KEY,
    description VARCHAR(255) NOT NULL
);

INSERT INTO admin_roles (name, description) VALUES
    ('super_admin', 'Everything, including other admin users'),
    ('admin', 'Tenants and the sales network'),
    ('support', 'Read only');

CREATE TABLE admin_users (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    email VARCHAR(255) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    full_name VARCHAR(255) NULL,
    role VARCHAR(32) NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    last_login_at DATETIME NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uq_admin_users_email UNIQUE (email),
    CONSTRAINT fk_admin_users_role FOREIGN KEY (role) REFERENCES admin_roles (name)
);

CREATE TABLE distributors (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    name VARCHAR(255) NOT NULL,
    company_name VARCHAR(255) NULL,
    email VARCHAR(255) NOT NULL,
    phone VARCHAR(20) NULL,
    gstin VARCHAR(15) NULL,
    pan VARCHAR(10) NULL,
    state_code CHAR(2) NULL,
    commission_rate_bp INTEGER NOT NULL DEFAULT 0,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uq_distributors_email UNIQUE (email),
    CONSTRAINT ck_distributors_rate CHECK (commission_rate_bp BETWEEN 0 AND 10000)
);

CREATE TABLE salesmen (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    distributor_id INTEGER NULL,
    name VARCHAR(255) NOT NULL,
    email VARCHAR(255) NOT NULL,
    phone VARCHAR(20) NULL,
    pan VARCHAR(10) NULL,
    commission_rate_bp INTEGER NOT NULL DEFAULT 0,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uq_salesmen_email UNIQUE (email),
    CONSTRAINT fk_salesmen_distributor FOREIGN KEY (distributor_id) REFERENCES distributors (id),
    CONSTRAINT ck_salesmen_rate CHECK (commission_rate_bp BETWEEN 0 AND 10000)
);
CREATE INDEX ix_salesmen_distributor ON salesmen (distributor_id);

CREATE TABLE subscription_plans (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    code VARCHAR(32) NOT NULL,
    name VARCHAR(128) NOT NULL,
    price_paise BIGINT NOT NULL,
    billing_period VARCHAR(16) NOT NULL,
    max_users INTEGER NULL,
    storage_limit_mb INTEGER NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uq_subscription_plans_code UNIQUE (code),
    CONSTRAINT ck_subscription_plans_period
        CHECK (billing_period IN ('monthly', 'quarterly', 'yearly')),
    CONSTRAINT ck_subscription_plans_price CHECK (price_paise >= 0)
);

CREATE TABLE referral_codes (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    code VARCHAR(32) NOT NULL,
    salesman_id INTEGER NULL,
    distributor_id INTEGER NULL,
    discount_bp INTEGER NOT NULL DEFAULT 0,
    max_uses INTEGER NULL,
    expires_at DATETIME NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uq_referral_codes_code UNIQUE (code),
    CONSTRAINT fk_referral_codes_salesman FOREIGN KEY (salesman_id) REFERENCES salesmen (id),
    CONSTRAINT fk_referral_codes_distributor
        FOREIGN KEY (distributor_id) REFERENCES distributors (id),
    CONSTRAINT ck_referral_codes_one_owner
        CHECK ((salesman_id IS NULL AND distributor_id IS NOT NULL)
            OR (salesman_id IS NOT NULL AND distributor_id IS NULL))
);

-- tenant_id is tenant_master.id in the master database: no foreign key across databases.
CREATE TABLE referral_rewards (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    referral_code_id INTEGER NOT NULL,
    tenant_id INTEGER NOT NULL,
    reward_type VARCHAR(32) NOT NULL,
    amount_paise BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'pending',
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT fk_referral_rewards_code
        FOREIGN KEY (referral_code_id) REFERENCES referral_codes (id),
    CONSTRAINT uq_referral_rewards_tenant UNIQUE (referral_code_id, tenant_id),
    CONSTRAINT ck_referral_rewards_status CHECK (status IN ('pending', 'granted', 'cancelled'))
);

CREATE TABLE payouts (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    salesman_id INTEGER NULL,
    distributor_id INTEGER NULL,
    period_start DATE NOT NULL,
    period_end DATE NOT NULL,
    amount_paise BIGINT NOT NULL,
    reference VARCHAR(64) NULL,
    paid_at DATETIME NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT fk_payouts_salesman FOREIGN KEY (salesman_id) REFERENCES salesmen (id),
    CONSTRAINT fk_payouts_distributor FOREIGN KEY (distributor_id) REFERENCES distributors (id),
    CONSTRAINT ck_payouts_one_payee
        CHECK ((salesman_id IS NULL AND distributor_id IS NOT NULL)
            OR (salesman_id IS NOT NULL AND distributor_id IS NULL)),
    CONSTRAINT ck_payouts_period CHECK (period_end >= period_start)
);

CREATE TABLE commissions (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    tenant_id INTEGER NOT NULL,
    salesman_id INTEGER NULL,
    distributor_id INTEGER NULL,
    referral_code_id INTEGER NULL,
    subscription_plan_id INTEGER NULL,
    base_amount_paise BIGINT NOT NULL,
    rate_bp INTEGER NOT NULL,
    amount_paise BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'pending',
    payout_id INTEGER NULL,
    earned_on DATE NOT NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT fk_commissions_salesman FOREIGN KEY (salesman_id) REFERENCES salesmen (id),
    CONSTRAINT fk_commissions_distributor
        FOREIGN KEY (distributor_id) REFERENCES distributors (id),
    CONSTRAINT fk_commissions_code FOREIGN KEY (referral_code_id) REFERENCES referral_codes (id),
    CONSTRAINT fk_commissions_plan
        FOREIGN KEY (subscription_plan_id) REFERENCES subscription_plans (id),
    CONSTRAINT fk_commissions_payout FOREIGN KEY (payout_id) REFERENCES payouts (id),
    CONSTRAINT ck_commissions_one_payee
        CHECK ((salesman_id IS NULL AND distributor_id IS NOT NULL)
            OR (salesman_id IS NOT NULL AND distributor_id IS NULL)),
    CONSTRAINT ck_commissions_status
        CHECK (status IN ('pending', 'approved', 'paid', 'cancelled'))
);
CREATE INDEX ix_commissions_salesman_status ON commissions (salesman_id, status);
CREATE INDEX ix_commissions_distributor_status ON commissions (distributor_id, status);
CREATE INDEX ix_commissions_tenant ON commissions (tenant_id);

CREATE TABLE leads (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    name VARCHAR(255) NOT NULL,
    company_name VARCHAR(255) NULL,
    email VARCHAR(255) NULL,
    phone VARCHAR(20) NULL,
    source VARCHAR(64) NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'new',
    salesman_id INTEGER NULL,
    distributor_id INTEGER NULL,
    converted_tenant_id INTEGER NULL,
    notes TEXT NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT fk_leads_salesman FOREIGN KEY (salesman_id) REFERENCES salesmen (id),
    CONSTRAINT fk_leads_distributor FOREIGN KEY (distributor_id) REFERENCES distributors (id),
    CONSTRAINT ck_leads_status
        CHECK (status IN ('new', 'contacted', 'qualified', 'converted', 'lost'))
);
CREATE INDEX ix_leads_status ON leads (status);
CREATE INDEX ix_leads_salesman ON leads (salesman_id);

CREATE TABLE lead_activities (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    lead_id INTEGER NOT NULL,
    admin_user_id INTEGER NULL,
    activity_type VARCHAR(16) NOT NULL,
    notes TEXT NULL,
    occurred_at DATETIME NOT NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT fk_lead_activities_lead FOREIGN KEY (lead_id) REFERENCES leads (id),
    CONSTRAINT fk_lead_activities_admin FOREIGN KEY (admin_user_id) REFERENCES admin_users (id),
    CONSTRAINT ck_lead_activities_type
        CHECK (activity_type IN ('call', 'email', 'meeting', 'note', 'status_change'))
);
CREATE INDEX ix_lead_activities_lead ON lead_activities (lead_id, occurred_at);

CREATE TABLE targets (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    salesman_id INTEGER NULL,
    distributor_id INTEGER NULL,
    period_start DATE NOT NULL,
    period_end DATE NOT NULL,
    target_tenants INTEGER NOT NULL DEFAULT 0,
    target_revenue_paise BIGINT NOT NULL DEFAULT 0,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT fk_targets_salesman FOREIGN KEY (salesman_id) REFERENCES salesmen (id),
    CONSTRAINT fk_targets_distributor FOREIGN KEY (distributor_id) REFERENCES distributors (id),
    CONSTRAINT ck_targets_one_owner
        CHECK ((salesman_id IS NULL AND distributor_id IS NOT NULL)
            OR (salesman_id IS NOT NULL AND distributor_id IS NULL)),
    CONSTRAINT ck_targets_period CHECK (period_end >= period_start)
);

CREATE TABLE audit_logs (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    admin_user_id INTEGER NULL,
    action VARCHAR(64) NOT NULL,
    entity_type VARCHAR(64) NOT NULL,
    entity_id VARCHAR(64) NULL,
    before_data TEXT NULL,
    after_data TEXT NULL,
    ip_address VARCHAR(45) NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT fk_audit_logs_admin FOREIGN KEY (admin_user_id) REFERENCES admin_users (id)
);
CREATE INDEX ix_audit_logs_entity ON audit_logs (entity_type, entity_id);
CREATE INDEX ix_audit_logs_created ON audit_logs (created_at);
