DELETE FROM account_groups WHERE is_system = TRUE AND parent_id IS NOT NULL;
DELETE FROM account_groups WHERE is_system = TRUE;
