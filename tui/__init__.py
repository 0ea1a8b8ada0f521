"""hardway: a terminal workbench for bootstrapping Kubernetes the hard way."""

__version__ = "0.1.0"
