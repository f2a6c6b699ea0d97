"""Datasets, collation and datamodules."""
