"""The hotel's staff: accounts with a role, passwords, login sessions and their throttle."""
