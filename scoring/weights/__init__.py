"""The weights (SPEC §6): the formula from inputs to the u16 vector (``formula``), setting them on chain on the chain's cadence (``setter``), and the stored runs (``runs``)."""
