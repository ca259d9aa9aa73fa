"""The page for policy designers: a scenario's parameters as controls and its results re-simulated
live (Panel). `serve(scenario, port=..., n_paths=...)` serves it on localhost; `riskpool app` runs it.

    controls   the controls, with units and ranges from the scenario schema
    settings   the page's changes to a scenario file, validated as on the command line; TOML export
    form       the controls as widgets, read back as changes
    jobs       runs on a worker thread, a newer change superseding an older run
    views      tables and charts of a run (ds.riskpool), the comparison with a baseline
    labels     English and Chinese words, money in 万元 / 亿元
    page       one visitor's page: layout and callbacks
    server     serving the page
"""
