-- One tenant's books: its users, chart of accounts, vouchers, GST, TDS, e-invoices and audit log.

CREATE TABLE users (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    email VARCHAR(255) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    full_name VARCHAR(255) NULL,
    role VARCHAR(16) NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    last_login_at DATETIME NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uq_users_email UNIQUE (email),
    CONSTRAINT ck_users_role CHECK (role IN ('admin', 'accountant', 'viewer'))
);

CREATE TABLE account_groups (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    code VARCHAR(64) NULL,
    name VARCHAR(128) NOT NULL,
    parent_id INTEGER NULL,
    nature VARCHAR(16) NOT NULL,
    affects_gross_profit BOOLEAN NOT NULL DEFAULT FALSE,
    is_system BOOLEAN NOT NULL DEFAULT FALSE,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uq_account_groups_code UNIQUE (code),
    CONSTRAINT uq_account_groups_name UNIQUE (name),
    CONSTRAINT fk_account_groups_parent FOREIGN KEY (parent_id) REFERENCES account_groups (id),
    CONSTRAINT ck_account_groups_nature
        CHECK (nature IN ('assets', 'liabilities', 'income', 'expenses'))
);
CREATE INDEX ix_account_groups_parent ON account_groups (parent_id);

CREATE TABLE ledgers (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    name VARCHAR(255) NOT NULL,
    account_group_id INTEGER NOT NULL,
    opening_balance_paise BIGINT NOT NULL DEFAULT 0,
    opening_balance_type CHAR(2) NOT NULL DEFAULT 'Dr',
    gstin VARCHAR(15) NULL,
    pan VARCHAR(10) NULL,
    state_code CHAR(2) NULL,
    bill_wise BOOLEAN NOT NULL DEFAULT FALSE,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uq_ledgers_name UNIQUE (name),
    CONSTRAINT fk_ledgers_group FOREIGN KEY (account_group_id) REFERENCES account_groups (id),
    CONSTRAINT ck_ledgers_opening CHECK (opening_balance_paise >= 0),
    CONSTRAINT ck_ledgers_opening_type CHECK (opening_balance_type IN ('Dr', 'Cr'))
);
CREATE INDEX ix_ledgers_group ON ledgers (account_group_id);

CREATE TABLE gstins (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    gstin VARCHAR(15) NOT NULL,
    legal_name VARCHAR(255) NOT NULL,
    trade_name VARCHAR(255) NULL,
    state_code CHAR(2) NOT NULL,
    registration_type VARCHAR(16) NOT NULL DEFAULT 'regular',
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uq_gstins_gstin UNIQUE (gstin),
    CONSTRAINT ck_gstins_registration
        CHECK (registration_type IN ('regular', 'composition', 'sez', 'casual'))
);

CREATE TABLE voucher_types (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    name VARCHAR(64) NOT NULL,
    base_type VARCHAR(16) NOT NULL,
    abbreviation VARCHAR(8) NOT NULL,
    is_system BOOLEAN NOT NULL DEFAULT FALSE,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uq_voucher_types_name UNIQUE (name),
    CONSTRAINT ck_voucher_types_base CHECK (base_type IN (
        'contra', 'payment', 'receipt', 'journal', 'sales', 'purchase',
        'credit_note', 'debit_note'))
);

CREATE TABLE vouchers (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    voucher_type_id INTEGER NOT NULL,
    financial_year VARCHAR(7) NOT NULL,
    number INTEGER NOT NULL,
    voucher_date DATE NOT NULL,
    narration TEXT NULL,
    reference VARCHAR(64) NULL,
    total_paise BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'posted',
    cancelled_at DATETIME NULL,
    created_by INTEGER NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uq_vouchers_number UNIQUE (voucher_type_id, financial_year, number),
    CONSTRAINT fk_vouchers_type FOREIGN KEY (voucher_type_id) REFERENCES voucher_types (id),
    CONSTRAINT fk_vouchers_creator FOREIGN KEY (created_by) REFERENCES users (id),
    CONSTRAINT ck_vouchers_status CHECK (status IN ('posted', 'cancelled')),
    CONSTRAINT ck_vouchers_total CHECK (total_paise > 0)
);
CREATE INDEX ix_vouchers_date ON vouchers (voucher_date);

CREATE TABLE voucher_ledger_entries (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    voucher_id INTEGER NOT NULL,
    line_no INTEGER NOT NULL,
    ledger_id INTEGER NOT NULL,
    entry_type CHAR(2) NOT NULL,
    amount_paise BIGINT NOT NULL,
    CONSTRAINT uq_voucher_ledger_entries_line UNIQUE (voucher_id, line_no),
    CONSTRAINT fk_voucher_ledger_entries_voucher FOREIGN KEY (voucher_id) REFERENCES vouchers (id),
    CONSTRAINT fk_voucher_ledger_entries_ledger FOREIGN KEY (ledger_id) REFERENCES ledgers (id),
    CONSTRAINT ck_voucher_ledger_entries_type CHECK (entry_type IN ('Dr', 'Cr')),
    CONSTRAINT ck_voucher_ledger_entries_amount CHECK (amount_paise > 0)
);
CREATE INDEX ix_voucher_ledger_entries_ledger ON voucher_ledger_entries (ledger_id);

CREATE TABLE voucher_items (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    voucher_id INTEGER NOT NULL,
    line_no INTEGER NOT NULL,
    item_name VARCHAR(255) NOT NULL,
    hsn_sac VARCHAR(8) NULL,
    quantity_milli BIGINT NOT NULL,
    unit VARCHAR(16) NULL,
    rate_paise BIGINT NOT NULL,
    taxable_paise BIGINT NOT NULL,
    gst_rate_bp INTEGER NOT NULL DEFAULT 0,
    cgst_paise BIGINT NOT NULL DEFAULT 0,
    sgst_paise BIGINT NOT NULL DEFAULT 0,
    igst_paise BIGINT NOT NULL DEFAULT 0,
    cess_paise BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT uq_voucher_items_line UNIQUE (voucher_id, line_no),
    CONSTRAINT fk_voucher_items_voucher FOREIGN KEY (voucher_id) REFERENCES vouchers (id),
    CONSTRAINT ck_voucher_items_quantity CHECK (quantity_milli > 0)
);

CREATE TABLE bill_wise_details (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    voucher_id INTEGER NOT NULL,
    ledger_id INTEGER NOT NULL,
    reference_type VARCHAR(16) NOT NULL,
    bill_reference VARCHAR(64) NOT NULL,
    entry_type CHAR(2) NOT NULL,
    amount_paise BIGINT NOT NULL,
    due_date DATE NULL,
    CONSTRAINT fk_bill_wise_details_voucher FOREIGN KEY (voucher_id) REFERENCES vouchers (id),
    CONSTRAINT fk_bill_wise_details_ledger FOREIGN KEY (ledger_id) REFERENCES ledgers (id),
    CONSTRAINT ck_bill_wise_details_reference
        CHECK (reference_type IN ('new_ref', 'against_ref', 'advance', 'on_account')),
    CONSTRAINT ck_bill_wise_details_type CHECK (entry_type IN ('Dr', 'Cr')),
    CONSTRAINT ck_bill_wise_details_amount CHECK (amount_paise > 0)
);
CREATE INDEX ix_bill_wise_details_bill ON bill_wise_details (ledger_id, bill_reference);

CREATE TABLE gst_rates (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    code VARCHAR(32) NOT NULL,
    description VARCHAR(255) NOT NULL,
    hsn_sac VARCHAR(8) NULL,
    rate_bp INTEGER NOT NULL,
    cess_bp INTEGER NOT NULL DEFAULT 0,
    effective_from DATE NOT NULL,
    effective_to DATE NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uq_gst_rates_code_from UNIQUE (code, effective_from),
    CONSTRAINT ck_gst_rates_rate CHECK (rate_bp BETWEEN 0 AND 10000),
    CONSTRAINT ck_gst_rates_period CHECK (effective_to IS NULL OR effective_to >= effective_from)
);
CREATE INDEX ix_gst_rates_effective ON gst_rates (effective_from, effective_to);

CREATE TABLE gstr_returns (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    gstin_id INTEGER NOT NULL,
    return_type VARCHAR(8) NOT NULL,
    period VARCHAR(7) NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'draft',
    summary TEXT NULL,
    arn VARCHAR(32) NULL,
    filed_at DATETIME NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uq_gstr_returns_period UNIQUE (gstin_id, return_type, period),
    CONSTRAINT fk_gstr_returns_gstin FOREIGN KEY (gstin_id) REFERENCES gstins (id),
    CONSTRAINT ck_gstr_returns_type CHECK (return_type IN ('GSTR-1', 'GSTR-3B')),
    CONSTRAINT ck_gstr_returns_status CHECK (status IN ('draft', 'filed'))
);

CREATE TABLE tds_details (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    voucher_id INTEGER NOT NULL,
    section VARCHAR(8) NOT NULL,
    deductee_ledger_id INTEGER NULL,
    deductee_pan VARCHAR(10) NOT NULL,
    rate_bp INTEGER NOT NULL,
    base_amount_paise BIGINT NOT NULL,
    tds_amount_paise BIGINT NOT NULL,
    deducted_on DATE NOT NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT fk_tds_details_voucher FOREIGN KEY (voucher_id) REFERENCES vouchers (id),
    CONSTRAINT fk_tds_details_ledger FOREIGN KEY (deductee_ledger_id) REFERENCES ledgers (id),
    CONSTRAINT ck_tds_details_rate CHECK (rate_bp BETWEEN 0 AND 10000)
);
CREATE INDEX ix_tds_details_voucher ON tds_details (voucher_id);

CREATE TABLE e_invoices (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    voucher_id INTEGER NOT NULL,
    irn VARCHAR(64) NOT NULL,
    ack_number VARCHAR(20) NOT NULL,
    ack_date DATETIME NOT NULL,
    signed_qr TEXT NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'generated',
    cancelled_at DATETIME NULL,
    cancel_reason VARCHAR(255) NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uq_e_invoices_voucher UNIQUE (voucher_id),
    CONSTRAINT uq_e_invoices_irn UNIQUE (irn),
    CONSTRAINT fk_e_invoices_voucher FOREIGN KEY (voucher_id) REFERENCES vouchers (id),
    CONSTRAINT ck_e_invoices_status CHECK (status IN ('generated', 'cancelled'))
);

CREATE TABLE audit_logs (
    id INTEGER PRIMARY KEY /*! AUTO_INCREMENT */,
    user_id INTEGER NULL,
    action VARCHAR(64) NOT NULL,
    entity_type VARCHAR(64) NOT NULL,
    entity_id VARCHAR(64) NULL,
    before_data TEXT NULL,
    after_data TEXT NULL,
    ip_address VARCHAR(45) NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT fk_audit_logs_user FOREIGN KEY (user_id) REFERENCES users (id)
);
CREATE INDEX ix_audit_logs_entity ON audit_logs (entity_type, entity_id);
CREATE INDEX ix_audit_logs_created ON audit_logs (created_at);
