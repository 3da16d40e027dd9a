"""The `farm` commands, one module per Heroku topic (`ps` holds ps, ps:scale and ps:autoscale).

A command reads its options, checks what it can before anything changes, calls farmhand.core for
the work, picks and starts the playbooks it needs, and prints. `_group`, `_options`, `_output`
and `_playbooks` are what the topics share.
"""
