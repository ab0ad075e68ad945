"""API keys: the store (``store``), issuing and rotating (``service``), and authenticating requests (``auth``)."""
