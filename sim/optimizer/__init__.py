"""The allocation optimizer: the LP over loss arrays (`model`), loss
scenarios by segment (`segments`) and the scenario -> allocation glue
(`allocation`)."""
