"""`/v1/billing/*`: checkout, the Stripe webhook, usage and balance of the caller's account."""
