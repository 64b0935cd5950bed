"""LEGO build plans: what LEGO makes (catalog)."""
