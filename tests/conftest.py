"""Shared test settings."""

from hypothesis import settings

# No per-example deadline: the first example pays for imports and JIT-free
# NumPy warm-up, and CI machines are noisy. Examples stay small instead.
settings.register_profile("activelabel", deadline=None, max_examples=100)
settings.load_profile("activelabel")
