"""The cluster's DNS zone: wanted records, drift, RFC 2136 updates with TSIG, zone files."""
