"""spikehebb: evolve synapse-specific Hebbian plasticity rules for random networks.

Networks start from random weights in every episode and organise themselves during the agent's
lifetime with a per-synapse "ABCD" rule (Najarro & Risi, NeurIPS 2020). The network runs as
rate-based plasticity equations in Brian2; evolution strategies search the rule coefficients.
"""

__version__ = "0.1.0"
