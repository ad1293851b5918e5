"""The node agent of the local fleet on the real control plane: a Node that runs its pods as processes."""
