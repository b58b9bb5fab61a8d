-- The standard Indian chart of account groups, as accountants know it from Tally:
-- 15 primary groups, then 13 sub-groups under them. Seeded groups are system groups
-- (is_system): they cannot be deleted, and custom groups nest under them.
-- depends: 0001.tenant-initial

INSERT INTO account_groups (code, name, parent_id, nature, affects_gross_profit, is_system) VALUES
    ('branch_divisions', 'Branch / Divisions', NULL, 'liabilities', FALSE, TRUE),
    ('capital_account', 'Capital Account', NULL, 'liabilities', FALSE, TRUE),
    ('current_assets', 'Current Assets', NULL, 'assets', FALSE, TRUE),
    ('current_liabilities', 'Current Liabilities', NULL, 'liabilities', FALSE, TRUE),
    ('direct_expenses', 'Direct Expenses', NULL, 'expenses', TRUE, TRUE),
    ('direct_incomes', 'Direct Incomes', NULL, 'income', TRUE, TRUE),
    ('fixed_assets', 'Fixed Assets', NULL, 'assets', FALSE, TRUE),
    ('indirect_expenses', 'Indirect Expenses', NULL, 'expenses', FALSE, TRUE),
    ('indirect_incomes', 'Indirect Incomes', NULL, 'income', FALSE, TRUE),
    ('investments', 'Investments', NULL, 'assets', FALSE, TRUE),
    ('loans_liability', 'Loans (Liability)', NULL, 'liabilities', FALSE, TRUE),
    ('misc_expenses_asset', 'Misc. Expenses (ASSET)', NULL, 'assets', FALSE, TRUE),
    ('purchase_accounts', 'Purchase Accounts', NULL, 'expenses', TRUE, TRUE),
    ('sales_accounts', 'Sales Accounts', NULL, 'income', TRUE, TRUE),
    ('suspense_account', 'Suspense A/c', NULL, 'liabilities', FALSE, TRUE);

-- Sub-groups take their nature from the parent, looked up by code (MySQL allows
-- INSERT ... SELECT from the table being inserted into; SQLite does too).
INSERT INTO account_groups (code, name, parent_id, nature, affects_gross_profit, is_system)
SELECT sub.code, sub.name, parent.id, parent.nature, FALSE, TRUE
FROM (
    SELECT 'bank_accounts' AS code, 'Bank Accounts' AS name, 'current_assets' AS parent_code
    UNION ALL SELECT 'bank_od', 'Bank OD A/c', 'loans_liability'
    UNION ALL SELECT 'cash_in_hand', 'Cash-in-Hand', 'current_assets'
    UNION ALL SELECT 'deposits_asset', 'Deposits (Asset)', 'current_assets'
    UNION ALL SELECT 'duties_taxes', 'Duties & Taxes', 'current_liabilities'
    UNION ALL SELECT 'loans_advances_asset', 'Loans & Advances (Asset)', 'current_assets'
    UNION ALL SELECT 'provisions', 'Provisions', 'current_liabilities'
    UNION ALL SELECT 'reserves_surplus', 'Reserves & Surplus', 'capital_account'
    UNION ALL SELECT 'secured_loans', 'Secured Loans', 'loans_liability'
    UNION ALL SELECT 'stock_in_hand', 'Stock-in-Hand', 'current_assets'
    UNION ALL SELECT 'sundry_creditors', 'Sundry Creditors', 'current_liabilities'
    UNION ALL SELECT 'sundry_debtors', 'Sundry Debtors', 'current_assets'
    UNION ALL SELECT 'unsecured_loans', 'Unsecured Loans', 'loans_liability'
) AS sub
JOIN account_groups AS parent ON parent.code = sub.parent_code;
