"""Tenants: the hotels posada serves."""
