"""Health probes for the cluster's services (used by plans, the CLI and the health grid)."""
