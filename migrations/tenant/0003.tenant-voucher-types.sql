-- The eight accounting voucher types every tenant starts with.
-- depends: 0001.tenant-initial

INSERT INTO voucher_types (name, base_type, abbreviation, is_system) VALUES
    ('Contra', 'contra', 'CTR', TRUE),
    ('Payment', 'payment', 'PMT', TRUE),
    ('Receipt', 'receipt', 'RCT', TRUE),
    ('Journal', 'journal', 'JRN', TRUE),
    ('Sales', 'sales', 'SAL', TRUE),
    ('Purchase', 'purchase', 'PUR', TRUE),
    ('Credit Note', 'credit_note', 'CRN', TRUE),
    ('Debit Note', 'debit_note', 'DBN', TRUE);
