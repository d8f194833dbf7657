"""Repository tools (offline checks that CI runs)."""
