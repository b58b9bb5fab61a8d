DELETE FROM voucher_types WHERE is_system = TRUE;
