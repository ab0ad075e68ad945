"""`sn19 dev`: the whole validator plus local miners on one machine."""
