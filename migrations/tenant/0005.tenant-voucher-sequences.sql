-- The last number given to each voucher type in each financial year. Posting a voucher
-- increments its row inside the voucher's own transaction: concurrent postings queue on the
-- row lock, and a voucher that rolls back gives its number back, so numbers have no gaps.
-- depends: 0001.tenant-initial

CREATE TABLE voucher_sequences (
    voucher_type_id INTEGER NOT NULL,
    financial_year VARCHAR(7) NOT NULL,
    last_number INTEGER NOT NULL,
    PRIMARY KEY (voucher_type_id, financial_year),
    CONSTRAINT fk_voucher_sequences_type FOREIGN KEY (voucher_type_id) REFERENCES voucher_types (id)
);

-- Vouchers that already exist keep their numbers: start each sequence after them.
INSERT INTO voucher_sequences (voucher_type_id, financial_year, last_number)
SELECT voucher_type_id, financial_year, MAX(number) FROM vouchers
GROUP BY voucher_type_id, financial_year;
