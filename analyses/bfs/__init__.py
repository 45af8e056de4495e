"""Training the Coconut / CoT / No-CoT models of graph reachability (the BFS probe's subjects)."""
