"""API keys: the store (``store``), issuing and rotating them (``service``), and authenticating
requests (``auth``)."""
