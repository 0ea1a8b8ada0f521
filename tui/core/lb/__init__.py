"""The API's virtual IP: ipfw rule sets, controller loopback aliases, the HAProxy alternative.

Pure renderers and parsers; the CLI (``hardway vip``) and the plans run their commands
through the Fleet.
"""
