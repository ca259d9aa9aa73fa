"""Scale-out: the block executor (threads or Dask), runs over it, sweeps and the sweep store."""
