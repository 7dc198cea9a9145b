"""dlkata's grader: discover exercises, run hidden tests whose probes execute submission code in a
sandbox, judge the returned data in the test process, report a score.

The flow is visible in the module names:

    catalog  -> which exercises exist (exercise.toml)
    submission -> where a learner's ``<id>/<id>.py`` lives
    sandbox  -> a separate process that imports the submission and runs probes (guard: forbidden APIs)
    wire     -> the only data that may come back from a sandbox (safe deserialisation)
    plugin   -> the pytest side: the ``submission`` fixture, points, outcomes
    runner   -> runs one exercise's tests for one submission, collects results
    results  -> the result schema (``dlkata.result/1``)
    report/  -> table, json, junit, markdown, gradescope
    cli      -> the ``dlkata`` command
"""

__version__ = "0.1.0"
