"""Other frameworks' trainers, run on the same model and data as vlmalign for the throughput benchmarks."""
