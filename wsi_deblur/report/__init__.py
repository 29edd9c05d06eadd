"""QC outputs for people: qc.json, the per-tile CSV."""
