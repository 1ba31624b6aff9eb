"""The README's generated blocks, one module per table family (scripts/readme_tables.py runs them)."""
