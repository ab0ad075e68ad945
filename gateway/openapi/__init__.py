"""`/openapi.json` and `/docs`: the OpenAPI document of the gateway (``document``) and its routes."""
