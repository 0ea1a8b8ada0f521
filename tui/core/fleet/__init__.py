"""asyncssh fleet: connections, exec streams, host-key policy, atomic SFTP."""
