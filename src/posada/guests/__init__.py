"""Guests: reservations, login and conversations."""
