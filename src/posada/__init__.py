"""posada."""
