"""Sandboxes that run model-written code under kernel isolation."""
