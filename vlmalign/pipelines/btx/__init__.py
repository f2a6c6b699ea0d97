"""Branch-Train-MiX (arXiv 2403.07816): merging branched experts into an MoE (docs/btx.md)."""
