-- The status a moving tenant returns to when its move ends, done or undone (active or
-- suspended). A file of its own: one DDL statement per migration on MySQL (see 0002).
-- depends: 0002.master-moving-status

ALTER TABLE tenant_master ADD COLUMN status_before_move VARCHAR(16) NULL
    CHECK (status_before_move IN ('active', 'suspended'));
