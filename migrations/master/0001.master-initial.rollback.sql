DROP TABLE tenant_master;
