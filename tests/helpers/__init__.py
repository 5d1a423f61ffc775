"""What tests build on: projects, the real CLI, servers and the traffic sent to them. Import from the modules.

* ``projects`` — a project folder on a frame (Ames or any data set): ``write_project`` (a small config for
  fast tests), ``example_project`` (the bundled house-prices example), ``init_project_on`` (what
  ``mloop init`` writes), ``write_config`` (any config dict), ``configure`` (change sections, or write a
  sibling ``mloop.yaml``), ``train_champion`` (run the loop until version 1 is champion), ``early_sales``.
* ``cli`` — the real ``mloop`` command in a subprocess with a clean environment: ``mloop`` (the
  CompletedProcess), ``mloop_json`` (its JSON output), ``ok`` / ``failed`` (checks with readable
  failures), ``mloop_argv`` (for ``Popen``), ``run_command`` (any other command), ``clean_env`` / ``user_env``.
* ``servers`` — processes on 127.0.0.1: ``free_port``, ``started`` (any server command, waited on until it
  answers, stopped with its process group), ``run_server`` (uvicorn serving a project), ``mlflow_server``,
  ``background`` (a process stopped on the way out), ``wait_for`` (poll until true).
* ``cli_help`` — ``WALK_HELP``, a script asking every command for its ``--help`` in one process.
* ``traffic`` — what clients send: ``as_records`` (JSON-ready rows), ``post``, ``send_with_labels``
  (predict in batches and feed the labels back).

Fixtures stay in the ``conftest.py`` of the folder that uses them and call these helpers; a test module
never imports another folder's ``conftest.py``.
"""
