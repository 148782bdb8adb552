"""Export: self-contained model folders (variables, face model, ``jax.export`` artifacts)
from a training run, or from DECA's and EMOCA's released checkpoints."""
