"""The tenancy machinery: backends, migrations, encryption, and (soon) routing, connections and
provisioning. Usable without Flask: the HTTP layer and the CLI only call it."""
