"""Day-2 operations on a deployed stack: backup and restore (`make backup`, `make restore`).
See docs/operations.md."""
