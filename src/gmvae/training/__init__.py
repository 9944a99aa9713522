"""Lightning plumbing: the module, the data module and the schedules."""

from gmvae.training.datamodule import ArrayDataModule, GMVAEDataModule
from gmvae.training.module import GMVAEModule
from gmvae.training.schedules import gumbel_temperature

__all__ = ["ArrayDataModule", "GMVAEDataModule", "GMVAEModule", "gumbel_temperature"]
