ALTER TABLE tenant_master DROP COLUMN status_before_move;
