"""The pipeline stages, one module per dvc.yaml stage (``main()``), run by the thin ``stages/<name>.py`` files."""
