"""Route handlers, one module per endpoint family."""

from miner_server.routes.capacity import capacity
from miner_server.routes.embeddings import embeddings
from miner_server.routes.images import edit_images, generate_images
from miner_server.routes.meta import healthz, models
from miner_server.routes.text import chat_completions, completions

ROUTES = [
    chat_completions,
    completions,
    embeddings,
    generate_images,
    edit_images,
    capacity,
    healthz,
    models,
]

__all__ = ["ROUTES"]
