"""The seeds' architectures, built from plain-data specs, with the paper's presets."""
from .spec import build_model
from .zoo import PRESETS, dvs_arch, init_uniform_fan_in, mnist_arch, preset_arch

__all__ = ["build_model", "mnist_arch", "dvs_arch", "preset_arch", "PRESETS", "init_uniform_fan_in"]
