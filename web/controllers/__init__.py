"""The dashboard's route handlers, one module per area (public, customer, operator)."""
