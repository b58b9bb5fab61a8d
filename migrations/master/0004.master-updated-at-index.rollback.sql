DROP INDEX ix_tenant_master_updated_at /*! ON tenant_master */;
