import subprocess
import sys

import pytest

from jaxface.host_memory import keep_freed_memory_mapped

# A child process that runs FLAME's jit-compiled forward+backward at B = 64 (tens of 15 MB
# buffers per call) and prints the minor page faults of its timed calls.
_CHILD = """
import resource, sys
import jax, jax.numpy as jnp
from jaxface import flame
from jaxface.host_memory import keep_freed_memory_mapped
if sys.argv[1] == "keep":
    assert keep_freed_memory_mapped()
model = flame.synthetic_flame()
args = (jnp.ones((64, 100)), jnp.ones((64, 50)), jnp.full((64, 15), 0.1))
grad = jax.jit(jax.grad(lambda m, *a: jnp.sum(flame.forward(m, *a).vertices ** 2),
                        argnums=(1, 2, 3)))
jax.block_until_ready(grad(model, *args))
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    jax.block_until_ready(grad(model, *args))
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_kept_heap_stops_refaulting_xla_buffers():
    faults = {mode: int(subprocess.run([sys.executable, "-c", _CHILD, mode], check=True,
                                       capture_output=True, text=True).stdout)
              for mode in ("default", "keep")}
    assert faults["keep"] < faults["default"] / 3, faults


def test_returns_whether_it_applied():
    assert keep_freed_memory_mapped() is sys.platform.startswith("linux")
