"""Prototype semi-supervised learning engine (research copy, not the product)."""
