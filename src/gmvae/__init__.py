"""gmvae: semi-supervised Gaussian-mixture VAE with auxiliary tasks (Arias Figueroa)."""

from gmvae.errors import ConfigError, DataError, GMVAEError

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataError", "GMVAEError", "__version__"]
