"""Pulumi program for Finvera's database tiers: ``databases`` holds the component, ``config``
reads and checks the stack's config, ``__main__`` composes them for ``pulumi up``."""
