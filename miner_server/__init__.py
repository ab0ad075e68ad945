"""miner_server package."""
