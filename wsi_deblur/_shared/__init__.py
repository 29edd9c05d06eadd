"""Small helpers more than one part of the package needs (array arithmetic, no I/O)."""
