"""Probing services: the probe kit, finding plugins, running checks, the master's schedule.

- ``rais.probing.base``: the kit for writing a probe (BaseProbe, ProbeFailed,
  guarded, tcp_endpoint, tls_creator); for probe authors, with the option
  checks in ``rais.checks``.
- ``rais.probing.discover``: finds the probe plugins (built-in and drop-in)
  into a ProbeRegistry; for the config loader, the CLI and the reactor shell.
- ``rais.probing.runner``: run_probe and ProbeRunner, which run checks on
  the reactor and always fire with a result in time; for the shell and CLI.
- ``rais.probing.schedule``: when each service is due and the rise/fall
  rule; pure, for the master's node.
- ``rais.probing.conformance``: the conformance test any probe can use.

The probe plugins themselves live in the top-level ``probes`` package.
"""
