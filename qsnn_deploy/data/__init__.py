"""Datasets: MNIST / Fashion-MNIST idx readers (see :mod:`qsnn_deploy.data.idx`)."""
from .idx import (DatasetError, default_data_dir, find_dataset, load_fashion_mnist, load_idx_dataset, load_mnist,
                  read_idx)

__all__ = ["DatasetError", "read_idx", "load_mnist", "load_fashion_mnist", "find_dataset", "load_idx_dataset",
           "default_data_dir"]
