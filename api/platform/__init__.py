"""Blueprints of the platform API under /api/admin: the main database's side of the seed."""
