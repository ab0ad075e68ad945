"""``GET /v1/requests/{id}``: a request's provenance for its own account (``controller``)."""
