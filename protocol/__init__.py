"""The wire: OpenAI types, the validator⇄miner extensions, SSE framing, the task catalog,
capacity messages and the local network file. Pure: stdlib and msgspec only, no I/O beyond
reading the shipped catalog files."""

from protocol.catalog import (
    Catalog,
    CatalogError,
    CheckSpec,
    EmbeddingSpec,
    EngineSpec,
    ImageSpec,
    Price,
    Task,
    TextSpec,
    Timeouts,
    load_catalog,
    parse_size,
    resolve_catalog,
)
from protocol.chainfile import ChainFileError, Neuron, format_chain_file, parse_chain_file
from protocol.config import ConfigError, Secret, dump_settings, load_settings
from protocol.records import GeneratedChoice, TextOutput

__all__ = [
    "Catalog",
    "CatalogError",
    "ChainFileError",
    "CheckSpec",
    "ConfigError",
    "EmbeddingSpec",
    "EngineSpec",
    "GeneratedChoice",
    "ImageSpec",
    "Neuron",
    "Price",
    "Secret",
    "Task",
    "TextOutput",
    "TextSpec",
    "Timeouts",
    "dump_settings",
    "format_chain_file",
    "load_catalog",
    "load_settings",
    "parse_chain_file",
    "parse_size",
    "resolve_catalog",
]
