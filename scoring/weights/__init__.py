"""The weights of SPEC §6: the formula from its inputs to the u16 vector (``formula``) and the
stored runs (``runs``). Setting them on chain is ``scoring.onchain``."""
