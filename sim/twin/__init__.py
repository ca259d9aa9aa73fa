"""The SimPy operational twin of the scheme."""
