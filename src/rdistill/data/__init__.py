"""Data sources: public benchmarks and other problem sets, converted to `Problem` records."""
