DROP TABLE voucher_sequences;
