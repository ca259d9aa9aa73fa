"""The numeric core: a scenario compiled into a flat plan of arrays
(`plan`), counter-based random streams (`rng`), the sparse sampler's bucket
bounds (`bucket_bounds`), the per-path sampling kernels (`sampling`), the
waterfall that settles who pays (`waterfall`), thread lanes over a block of
paths (`lanes`), per-path output arrays (`outputs`) and in-process runs
(`run`). Kernels see arrays and scalars only; nothing here labels results."""
