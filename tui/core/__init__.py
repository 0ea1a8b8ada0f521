"""hardway's headless engine. Never imports Textual (tests/unit/test_import_hygiene.py)."""
