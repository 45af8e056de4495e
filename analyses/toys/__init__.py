"""Toy experiments: ψ from SAEs against ground truth (toy superposition) and the scaling sweep."""
