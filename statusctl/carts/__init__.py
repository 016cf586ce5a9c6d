"""Cart adapters, one module per cart type, behind the interface in `base`."""
