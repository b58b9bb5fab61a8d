"""Typed SQLAlchemy models, one declarative base per database tier.

The tables themselves are made by the yoyo migrations in ``migrations/<tier>``; a test checks
that every model's table and columns exist there, so the two cannot drift apart.
"""
