"""The learner's tools beyond check/grade, one job per module: ``i18n`` (language), ``checker`` (how a
run of the public tests went), ``watch`` (re-run on save), ``progress``, ``stubs`` (pristine stub, reset),
``explain``, ``probes`` (sandbox probes for the report's plots), ``svg`` (plot primitives), ``figures``
(the report's plots), ``html_report`` and ``mock`` (a timed mock interview). The click commands are in
``grader.cli_learner``."""
