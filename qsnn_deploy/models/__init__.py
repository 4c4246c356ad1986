"""The seeds' architectures, built from plain-data specs."""
from .spec import build_model
from .zoo import dvs_arch, mnist_arch

__all__ = ["build_model", "mnist_arch", "dvs_arch"]
