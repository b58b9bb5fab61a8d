-- GST rate slabs with the dates they were in force. GST began on 2017-07-01; the reform that
-- took effect on 2025-09-22 folded the 12% and 28% slabs into 5% and 18% and added 40% for
-- luxury and sin goods. A voucher keeps the rate of its own date, so old rows are never
-- changed: a slab that ended gets an effective_to, a new one a new row.
-- depends: 0001.tenant-initial

INSERT INTO gst_rates (code, description, rate_bp, effective_from, effective_to) VALUES
    ('GST0', 'Nil rated', 0, '2017-07-01', NULL),
    ('GST0_25', 'Rough precious and semi-precious stones', 25, '2017-07-01', NULL),
    ('GST3', 'Gold, silver and jewellery', 300, '2017-07-01', NULL),
    ('GST5', 'Standard 5%', 500, '2017-07-01', NULL),
    ('GST12', 'Standard 12%', 1200, '2017-07-01', '2025-09-21'),
    ('GST18', 'Standard 18%', 1800, '2017-07-01', NULL),
    ('GST28', 'Standard 28%', 2800, '2017-07-01', '2025-09-21'),
    ('GST40', 'Luxury and sin goods 40%', 4000, '2025-09-22', NULL);
