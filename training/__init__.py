"""milmer.training: the Milmer network, DEAP data and training loops (needs torch)."""
