"""Declare Finvera's databases from the stack's config and export the API's environment."""

import pulumi

from infra.config import args_from_config
from infra.databases import FinveraDatabases

databases = FinveraDatabases("finvera", args_from_config(pulumi.Config()))
for variable, value in databases.environment.items():
    pulumi.export(variable, value)
pulumi.export("tenantUsers", databases.tenant_users)
