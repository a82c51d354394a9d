"""Synthetic data generators (registry, deliveries) and what they share (real towns)."""
