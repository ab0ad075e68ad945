"""Buying credits: Stripe Checkout (``stripe``) and its signed webhooks (``webhooks``)."""
