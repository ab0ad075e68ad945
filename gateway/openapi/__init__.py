"""`/openapi.json` and `/docs`: the gateway's OpenAPI document (``document``), served."""
