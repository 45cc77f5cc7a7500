"""Tests that need neither the database nor the model."""
