"""guilde_diag: the ``dev3000`` command, composed from every package's commands."""
