"""weam: Word-Exchange Aligning Model pre-training and zero-shot evaluation for family-diversity studies."""

__version__ = "0.1.0"
